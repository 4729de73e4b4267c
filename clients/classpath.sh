# Sourced by build.sh and run.sh: Debian's grpc-java jars (with the netty transport) and protobuf-java.
jars=(grpc-api grpc-core grpc-context grpc-netty grpc-protobuf grpc-protobuf-lite grpc-stub protobuf guava
  netty-buffer netty-codec netty-codec-http netty-codec-http2 netty-common netty-handler netty-resolver
  netty-transport perfmark-api geronimo-annotation-1.3-spec)
GRPC_JAVA_CLASSPATH=$(printf '/usr/share/java/%s.jar:' "${jars[@]}")
GRPC_JAVA_CLASSPATH=${GRPC_JAVA_CLASSPATH%:}
export GRPC_JAVA_CLASSPATH
