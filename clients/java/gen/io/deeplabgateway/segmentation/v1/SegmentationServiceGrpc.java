package io.deeplabgateway.segmentation.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * Semantic segmentation of photographs.
 * </pre>
 */
@javax.annotation.Generated(
    value = "by gRPC proto compiler",
    comments = "Source: segmentation/v1/segmentation_service.proto")
@io.grpc.stub.annotations.GrpcGenerated
public final class SegmentationServiceGrpc {

  private SegmentationServiceGrpc() {}

  public static final String SERVICE_NAME = "segmentation.v1.SegmentationService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<io.deeplabgateway.segmentation.v1.SegmentImageRequest,
      io.deeplabgateway.segmentation.v1.SegmentImageResponse> getSegmentImageMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "SegmentImage",
      requestType = io.deeplabgateway.segmentation.v1.SegmentImageRequest.class,
      responseType = io.deeplabgateway.segmentation.v1.SegmentImageResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.deeplabgateway.segmentation.v1.SegmentImageRequest,
      io.deeplabgateway.segmentation.v1.SegmentImageResponse> getSegmentImageMethod() {
    io.grpc.MethodDescriptor<io.deeplabgateway.segmentation.v1.SegmentImageRequest, io.deeplabgateway.segmentation.v1.SegmentImageResponse> getSegmentImageMethod;
    if ((getSegmentImageMethod = SegmentationServiceGrpc.getSegmentImageMethod) == null) {
      synchronized (SegmentationServiceGrpc.class) {
        if ((getSegmentImageMethod = SegmentationServiceGrpc.getSegmentImageMethod) == null) {
          SegmentationServiceGrpc.getSegmentImageMethod = getSegmentImageMethod =
              io.grpc.MethodDescriptor.<io.deeplabgateway.segmentation.v1.SegmentImageRequest, io.deeplabgateway.segmentation.v1.SegmentImageResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "SegmentImage"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.deeplabgateway.segmentation.v1.SegmentImageRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.deeplabgateway.segmentation.v1.SegmentImageResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SegmentationServiceMethodDescriptorSupplier("SegmentImage"))
              .build();
        }
      }
    }
    return getSegmentImageMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.deeplabgateway.segmentation.v1.SegmentImageStreamRequest,
      io.deeplabgateway.segmentation.v1.SegmentImageStreamResponse> getSegmentImageStreamMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "SegmentImageStream",
      requestType = io.deeplabgateway.segmentation.v1.SegmentImageStreamRequest.class,
      responseType = io.deeplabgateway.segmentation.v1.SegmentImageStreamResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.BIDI_STREAMING)
  public static io.grpc.MethodDescriptor<io.deeplabgateway.segmentation.v1.SegmentImageStreamRequest,
      io.deeplabgateway.segmentation.v1.SegmentImageStreamResponse> getSegmentImageStreamMethod() {
    io.grpc.MethodDescriptor<io.deeplabgateway.segmentation.v1.SegmentImageStreamRequest, io.deeplabgateway.segmentation.v1.SegmentImageStreamResponse> getSegmentImageStreamMethod;
    if ((getSegmentImageStreamMethod = SegmentationServiceGrpc.getSegmentImageStreamMethod) == null) {
      synchronized (SegmentationServiceGrpc.class) {
        if ((getSegmentImageStreamMethod = SegmentationServiceGrpc.getSegmentImageStreamMethod) == null) {
          SegmentationServiceGrpc.getSegmentImageStreamMethod = getSegmentImageStreamMethod =
              io.grpc.MethodDescriptor.<io.deeplabgateway.segmentation.v1.SegmentImageStreamRequest, io.deeplabgateway.segmentation.v1.SegmentImageStreamResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.BIDI_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "SegmentImageStream"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.deeplabgateway.segmentation.v1.SegmentImageStreamRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.deeplabgateway.segmentation.v1.SegmentImageStreamResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SegmentationServiceMethodDescriptorSupplier("SegmentImageStream"))
              .build();
        }
      }
    }
    return getSegmentImageStreamMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.deeplabgateway.segmentation.v1.ListModelsRequest,
      io.deeplabgateway.segmentation.v1.ListModelsResponse> getListModelsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListModels",
      requestType = io.deeplabgateway.segmentation.v1.ListModelsRequest.class,
      responseType = io.deeplabgateway.segmentation.v1.ListModelsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.deeplabgateway.segmentation.v1.ListModelsRequest,
      io.deeplabgateway.segmentation.v1.ListModelsResponse> getListModelsMethod() {
    io.grpc.MethodDescriptor<io.deeplabgateway.segmentation.v1.ListModelsRequest, io.deeplabgateway.segmentation.v1.ListModelsResponse> getListModelsMethod;
    if ((getListModelsMethod = SegmentationServiceGrpc.getListModelsMethod) == null) {
      synchronized (SegmentationServiceGrpc.class) {
        if ((getListModelsMethod = SegmentationServiceGrpc.getListModelsMethod) == null) {
          SegmentationServiceGrpc.getListModelsMethod = getListModelsMethod =
              io.grpc.MethodDescriptor.<io.deeplabgateway.segmentation.v1.ListModelsRequest, io.deeplabgateway.segmentation.v1.ListModelsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListModels"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.deeplabgateway.segmentation.v1.ListModelsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.deeplabgateway.segmentation.v1.ListModelsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new SegmentationServiceMethodDescriptorSupplier("ListModels"))
              .build();
        }
      }
    }
    return getListModelsMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static SegmentationServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<SegmentationServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<SegmentationServiceStub>() {
        @java.lang.Override
        public SegmentationServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new SegmentationServiceStub(channel, callOptions);
        }
      };
    return SegmentationServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static SegmentationServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<SegmentationServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<SegmentationServiceBlockingStub>() {
        @java.lang.Override
        public SegmentationServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new SegmentationServiceBlockingStub(channel, callOptions);
        }
      };
    return SegmentationServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static SegmentationServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<SegmentationServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<SegmentationServiceFutureStub>() {
        @java.lang.Override
        public SegmentationServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new SegmentationServiceFutureStub(channel, callOptions);
        }
      };
    return SegmentationServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * Semantic segmentation of photographs.
   * </pre>
   */
  public static abstract class SegmentationServiceImplBase implements io.grpc.BindableService {

    /**
     * <pre>
     * Segments one image. Errors: INVALID_ARGUMENT for an empty, undecodable, unsupported or over-limit image
     * (the message names the limit or the detected format); NOT_FOUND for an unknown model, version or label;
     * UNAVAILABLE when the model backend cannot be reached; DEADLINE_EXCEEDED when the caller's deadline passes;
     * RESOURCE_EXHAUSTED when the service sheds load.
     * </pre>
     */
    public void segmentImage(io.deeplabgateway.segmentation.v1.SegmentImageRequest request,
        io.grpc.stub.StreamObserver<io.deeplabgateway.segmentation.v1.SegmentImageResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getSegmentImageMethod(), responseObserver);
    }

    /**
     * <pre>
     * Segments many images over one call. Responses come back in request order, one per request. A bad image
     * fails its own item (see SegmentImageStreamResponse.error) and the stream goes on; the call itself fails
     * only for problems that concern the whole stream, such as a passed deadline.
     * </pre>
     */
    public io.grpc.stub.StreamObserver<io.deeplabgateway.segmentation.v1.SegmentImageStreamRequest> segmentImageStream(
        io.grpc.stub.StreamObserver<io.deeplabgateway.segmentation.v1.SegmentImageStreamResponse> responseObserver) {
      return io.grpc.stub.ServerCalls.asyncUnimplementedStreamingCall(getSegmentImageStreamMethod(), responseObserver);
    }

    /**
     * <pre>
     * Lists the models this service is configured to use, with their labels, input size, and the versions the
     * backend reports for them and their state.
     * </pre>
     */
    public void listModels(io.deeplabgateway.segmentation.v1.ListModelsRequest request,
        io.grpc.stub.StreamObserver<io.deeplabgateway.segmentation.v1.ListModelsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListModelsMethod(), responseObserver);
    }

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
          .addMethod(
            getSegmentImageMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                io.deeplabgateway.segmentation.v1.SegmentImageRequest,
                io.deeplabgateway.segmentation.v1.SegmentImageResponse>(
                  this, METHODID_SEGMENT_IMAGE)))
          .addMethod(
            getSegmentImageStreamMethod(),
            io.grpc.stub.ServerCalls.asyncBidiStreamingCall(
              new MethodHandlers<
                io.deeplabgateway.segmentation.v1.SegmentImageStreamRequest,
                io.deeplabgateway.segmentation.v1.SegmentImageStreamResponse>(
                  this, METHODID_SEGMENT_IMAGE_STREAM)))
          .addMethod(
            getListModelsMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                io.deeplabgateway.segmentation.v1.ListModelsRequest,
                io.deeplabgateway.segmentation.v1.ListModelsResponse>(
                  this, METHODID_LIST_MODELS)))
          .build();
    }
  }

  /**
   * <pre>
   * Semantic segmentation of photographs.
   * </pre>
   */
  public static final class SegmentationServiceStub extends io.grpc.stub.AbstractAsyncStub<SegmentationServiceStub> {
    private SegmentationServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected SegmentationServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new SegmentationServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Segments one image. Errors: INVALID_ARGUMENT for an empty, undecodable, unsupported or over-limit image
     * (the message names the limit or the detected format); NOT_FOUND for an unknown model, version or label;
     * UNAVAILABLE when the model backend cannot be reached; DEADLINE_EXCEEDED when the caller's deadline passes;
     * RESOURCE_EXHAUSTED when the service sheds load.
     * </pre>
     */
    public void segmentImage(io.deeplabgateway.segmentation.v1.SegmentImageRequest request,
        io.grpc.stub.StreamObserver<io.deeplabgateway.segmentation.v1.SegmentImageResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getSegmentImageMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Segments many images over one call. Responses come back in request order, one per request. A bad image
     * fails its own item (see SegmentImageStreamResponse.error) and the stream goes on; the call itself fails
     * only for problems that concern the whole stream, such as a passed deadline.
     * </pre>
     */
    public io.grpc.stub.StreamObserver<io.deeplabgateway.segmentation.v1.SegmentImageStreamRequest> segmentImageStream(
        io.grpc.stub.StreamObserver<io.deeplabgateway.segmentation.v1.SegmentImageStreamResponse> responseObserver) {
      return io.grpc.stub.ClientCalls.asyncBidiStreamingCall(
          getChannel().newCall(getSegmentImageStreamMethod(), getCallOptions()), responseObserver);
    }

    /**
     * <pre>
     * Lists the models this service is configured to use, with their labels, input size, and the versions the
     * backend reports for them and their state.
     * </pre>
     */
    public void listModels(io.deeplabgateway.segmentation.v1.ListModelsRequest request,
        io.grpc.stub.StreamObserver<io.deeplabgateway.segmentation.v1.ListModelsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListModelsMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * <pre>
   * Semantic segmentation of photographs.
   * </pre>
   */
  public static final class SegmentationServiceBlockingStub extends io.grpc.stub.AbstractBlockingStub<SegmentationServiceBlockingStub> {
    private SegmentationServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected SegmentationServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new SegmentationServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Segments one image. Errors: INVALID_ARGUMENT for an empty, undecodable, unsupported or over-limit image
     * (the message names the limit or the detected format); NOT_FOUND for an unknown model, version or label;
     * UNAVAILABLE when the model backend cannot be reached; DEADLINE_EXCEEDED when the caller's deadline passes;
     * RESOURCE_EXHAUSTED when the service sheds load.
     * </pre>
     */
    public io.deeplabgateway.segmentation.v1.SegmentImageResponse segmentImage(io.deeplabgateway.segmentation.v1.SegmentImageRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getSegmentImageMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists the models this service is configured to use, with their labels, input size, and the versions the
     * backend reports for them and their state.
     * </pre>
     */
    public io.deeplabgateway.segmentation.v1.ListModelsResponse listModels(io.deeplabgateway.segmentation.v1.ListModelsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListModelsMethod(), getCallOptions(), request);
    }
  }

  /**
   * <pre>
   * Semantic segmentation of photographs.
   * </pre>
   */
  public static final class SegmentationServiceFutureStub extends io.grpc.stub.AbstractFutureStub<SegmentationServiceFutureStub> {
    private SegmentationServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected SegmentationServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new SegmentationServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Segments one image. Errors: INVALID_ARGUMENT for an empty, undecodable, unsupported or over-limit image
     * (the message names the limit or the detected format); NOT_FOUND for an unknown model, version or label;
     * UNAVAILABLE when the model backend cannot be reached; DEADLINE_EXCEEDED when the caller's deadline passes;
     * RESOURCE_EXHAUSTED when the service sheds load.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.deeplabgateway.segmentation.v1.SegmentImageResponse> segmentImage(
        io.deeplabgateway.segmentation.v1.SegmentImageRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getSegmentImageMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Lists the models this service is configured to use, with their labels, input size, and the versions the
     * backend reports for them and their state.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.deeplabgateway.segmentation.v1.ListModelsResponse> listModels(
        io.deeplabgateway.segmentation.v1.ListModelsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListModelsMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_SEGMENT_IMAGE = 0;
  private static final int METHODID_LIST_MODELS = 1;
  private static final int METHODID_SEGMENT_IMAGE_STREAM = 2;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final SegmentationServiceImplBase serviceImpl;
    private final int methodId;

    MethodHandlers(SegmentationServiceImplBase serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_SEGMENT_IMAGE:
          serviceImpl.segmentImage((io.deeplabgateway.segmentation.v1.SegmentImageRequest) request,
              (io.grpc.stub.StreamObserver<io.deeplabgateway.segmentation.v1.SegmentImageResponse>) responseObserver);
          break;
        case METHODID_LIST_MODELS:
          serviceImpl.listModels((io.deeplabgateway.segmentation.v1.ListModelsRequest) request,
              (io.grpc.stub.StreamObserver<io.deeplabgateway.segmentation.v1.ListModelsResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_SEGMENT_IMAGE_STREAM:
          return (io.grpc.stub.StreamObserver<Req>) serviceImpl.segmentImageStream(
              (io.grpc.stub.StreamObserver<io.deeplabgateway.segmentation.v1.SegmentImageStreamResponse>) responseObserver);
        default:
          throw new AssertionError();
      }
    }
  }

  private static abstract class SegmentationServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    SegmentationServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return io.deeplabgateway.segmentation.v1.SegmentationServiceProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("SegmentationService");
    }
  }

  private static final class SegmentationServiceFileDescriptorSupplier
      extends SegmentationServiceBaseDescriptorSupplier {
    SegmentationServiceFileDescriptorSupplier() {}
  }

  private static final class SegmentationServiceMethodDescriptorSupplier
      extends SegmentationServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final String methodName;

    SegmentationServiceMethodDescriptorSupplier(String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (SegmentationServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new SegmentationServiceFileDescriptorSupplier())
              .addMethod(getSegmentImageMethod())
              .addMethod(getSegmentImageStreamMethod())
              .addMethod(getListModelsMethod())
              .build();
        }
      }
    }
    return result;
  }
}
