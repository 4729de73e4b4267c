package io.deeplabgateway.example;

import com.google.protobuf.ByteString;
import io.deeplabgateway.segmentation.v1.BoundingBox;
import io.deeplabgateway.segmentation.v1.ClassStat;
import io.deeplabgateway.segmentation.v1.Cutout;
import io.deeplabgateway.segmentation.v1.CutoutOptions;
import io.deeplabgateway.segmentation.v1.MaskFormat;
import io.deeplabgateway.segmentation.v1.SegmentImageRequest;
import io.deeplabgateway.segmentation.v1.SegmentImageResponse;
import io.deeplabgateway.segmentation.v1.SegmentationServiceGrpc;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Segments an image file with deeplab-gateway and prints the classes found; with {@code --cutout}, also writes the
 * photo cut out along every class but the background (an RGBA PNG, cropped to the subject).
 *
 * <p>Usage: {@code java io.deeplabgateway.example.SegmentImage [--server host:port] [--cutout OUT.png] IMAGE}
 */
public final class SegmentImage {
  private SegmentImage() {}

  public static void main(String[] args) throws Exception {
    String server = "localhost:50051";
    String image = null;
    String cutout = null;
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--server") && i + 1 < args.length) {
        server = args[++i];
      } else if (args[i].equals("--cutout") && i + 1 < args.length) {
        cutout = args[++i];
      } else {
        image = args[i];
      }
    }
    if (image == null) {
      System.err.println("usage: SegmentImage [--server host:port] [--cutout OUT.png] IMAGE");
      System.exit(2);
    }
    ManagedChannel channel =
        NettyChannelBuilder.forTarget(server).usePlaintext().maxInboundMessageSize(64 << 20).build();
    try {
      SegmentImageRequest.Builder request =
          SegmentImageRequest.newBuilder()
              .setImage(ByteString.copyFrom(Files.readAllBytes(Path.of(image))))
              .setMaskFormat(MaskFormat.MASK_FORMAT_RLE);
      if (cutout != null) {
        request.setCutout(CutoutOptions.newBuilder().setCrop(true));
      }
      SegmentImageResponse response =
          SegmentationServiceGrpc.newBlockingStub(channel)
              .withDeadlineAfter(60, TimeUnit.SECONDS)
              .segmentImage(request.build());
      System.out.printf(
          "%s: %dx%d, model %s v%d%n",
          image,
          response.getImageWidth(),
          response.getImageHeight(),
          response.getModel().getName(),
          response.getModel().getVersion());
      for (ClassStat c : response.getClassesList()) {
        BoundingBox box = c.getBoundingBox();
        System.out.printf(
            "  %-12s %5.1f%%  box %d,%d %dx%d%n",
            c.getLabel(), 100 * c.getFraction(), box.getX(), box.getY(), box.getWidth(), box.getHeight());
      }
      if (cutout != null) {
        Cutout cut = response.getCutout();
        Files.write(Path.of(cutout), cut.getImage().toByteArray());
        System.out.printf(
            "cut-out: %dx%d at %d,%d, written to %s%n",
            cut.getWidth(), cut.getHeight(), cut.getBox().getX(), cut.getBox().getY(), cutout);
      }
    } catch (StatusRuntimeException e) {
      System.err.println("SegmentImage: error: " + e.getStatus().getCode() + ": " + e.getStatus().getDescription());
      System.exit(1);
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
