// Command segment segments an image file with deeplab-gateway and prints the classes found.
//
//	segment [-server host:port] IMAGE
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	segmentationv1 "github.com/deeplab-gateway/deeplab-gateway/clients/go/gen/segmentation/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

func main() {
	server := flag.String("server", "localhost:50051", "host:port of the service")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: segment [-server host:port] IMAGE")
		os.Exit(2)
	}
	image, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "segment: error: %v\n", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, *server, grpc.WithInsecure(), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "segment: error: %v\n", err)
		os.Exit(2)
	}
	defer conn.Close()
	client := segmentationv1.NewSegmentationServiceClient(conn)
	response, err := client.SegmentImage(ctx, &segmentationv1.SegmentImageRequest{
		Image:      image,
		MaskFormat: segmentationv1.MaskFormat_MASK_FORMAT_RLE,
	})
	if err != nil {
		s := status.Convert(err)
		fmt.Fprintf(os.Stderr, "segment: error: %s: %s\n", s.Code(), s.Message())
		os.Exit(1)
	}
	fmt.Printf("%s: %dx%d, model %s v%d\n", flag.Arg(0), response.ImageWidth, response.ImageHeight,
		response.GetModel().GetName(), response.GetModel().GetVersion())
	for _, c := range response.Classes {
		box := c.GetBoundingBox()
		fmt.Printf("  %-12s %5.1f%%  box %d,%d %dx%d\n", c.Label, 100*c.Fraction, box.X, box.Y, box.Width, box.Height)
	}
}
