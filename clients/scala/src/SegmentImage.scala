// Segments an image file with deeplab-gateway and prints the classes found, through the Java stubs that
// `make clients` generates (buf, protoc's java generator, grpc-java's plugin) and Debian's grpc-java jars; with
// --cutout, also writes the photo cut out along every class but the background (an RGBA PNG, cropped to it).
//   scala -cp CLASSPATH io.deeplabgateway.example.scala.SegmentImage [--server host:port] [--cutout OUT.png] IMAGE
package io.deeplabgateway.example.scala

import java.nio.file.{Files, Paths}
import java.util.concurrent.TimeUnit

import scala.collection.JavaConverters._

import com.google.protobuf.ByteString
import io.deeplabgateway.segmentation.v1.{CutoutOptions, MaskFormat, SegmentImageRequest, SegmentationServiceGrpc}
import io.grpc.StatusRuntimeException
import io.grpc.netty.NettyChannelBuilder

object SegmentImage {
  def main(args: Array[String]): Unit = {
    val flags = Set("--server", "--cutout")
    def flag(name: String): Option[String] = args.sliding(2).collectFirst { case Array(`name`, value) => value }
    val server = flag("--server").getOrElse("localhost:50051")
    val cutout = flag("--cutout")
    val images = args.zipWithIndex.collect {
      case (a, i) if !flags(a) && (i == 0 || !flags(args(i - 1))) => a
    }
    if (images.length != 1) {
      System.err.println("usage: SegmentImage [--server host:port] [--cutout OUT.png] IMAGE")
      sys.exit(2)
    }
    val image = images(0)
    val channel = NettyChannelBuilder.forTarget(server).usePlaintext().maxInboundMessageSize(64 << 20).build()
    try {
      val request = SegmentImageRequest.newBuilder()
        .setImage(ByteString.copyFrom(Files.readAllBytes(Paths.get(image))))
        .setMaskFormat(MaskFormat.MASK_FORMAT_RLE)
      cutout.foreach(_ => request.setCutout(CutoutOptions.newBuilder().setCrop(true)))
      val response = SegmentationServiceGrpc.newBlockingStub(channel)
        .withDeadlineAfter(60, TimeUnit.SECONDS)
        .segmentImage(request.build())
      println(s"$image: ${response.getImageWidth}x${response.getImageHeight}, " +
        s"model ${response.getModel.getName} v${response.getModel.getVersion}")
      for (c <- response.getClassesList.asScala) {
        val box = c.getBoundingBox
        println(f"  ${c.getLabel}%-12s ${100 * c.getFraction}%5.1f%%  box ${box.getX},${box.getY} ${box.getWidth}x${box.getHeight}")
      }
      for (out <- cutout) {
        val cut = response.getCutout
        Files.write(Paths.get(out), cut.getImage.toByteArray)
        println(s"cut-out: ${cut.getWidth}x${cut.getHeight} at ${cut.getBox.getX},${cut.getBox.getY}, written to $out")
      }
    } catch {
      case e: StatusRuntimeException =>
        System.err.println(s"SegmentImage: error: ${e.getStatus.getCode}: ${e.getStatus.getDescription}")
        sys.exit(1)
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS)
    }
  }
}
