// Command segment segments an image file with deeplab-gateway and prints the classes found; with --cutout, it also
// writes the photo cut out along every class but the background (an RGBA PNG, cropped to the subject).
//
//	segment [--server host:port] [--cutout OUT.png] IMAGE
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	segmentationv1 "github.com/deeplab-gateway/deeplab-gateway/clients/go/gen/segmentation/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// parseArgs takes -server/--server and -cutout/--cutout before or after the image, as the other languages'
// examples do (Go's flag package stops at the first positional argument).
func parseArgs(args []string) (server string, cutout string, image string, ok bool) {
	server = "localhost:50051"
	var positional []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		switch {
		case strings.HasPrefix(arg, "-") && (name == "server" || name == "cutout"):
			if !hasValue {
				if i+1 >= len(args) {
					return "", "", "", false
				}
				value = args[i+1]
				i++
			}
			if name == "server" {
				server = value
			} else {
				cutout = value
			}
		default:
			positional = append(positional, arg)
		}
	}
	if len(positional) != 1 {
		return "", "", "", false
	}
	return server, cutout, positional[0], true
}

func main() {
	server, cutout, path, ok := parseArgs(os.Args[1:])
	if !ok {
		fmt.Fprintln(os.Stderr, "usage: segment [--server host:port] [--cutout OUT.png] IMAGE")
		os.Exit(2)
	}
	image, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "segment: error: %v\n", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, server, grpc.WithInsecure(), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "segment: error: %v\n", err)
		os.Exit(2)
	}
	defer conn.Close()
	client := segmentationv1.NewSegmentationServiceClient(conn)
	request := &segmentationv1.SegmentImageRequest{
		Image:      image,
		MaskFormat: segmentationv1.MaskFormat_MASK_FORMAT_RLE,
	}
	if cutout != "" {
		request.Cutout = &segmentationv1.CutoutOptions{Crop: true}
	}
	response, err := client.SegmentImage(ctx, request)
	if err != nil {
		s := status.Convert(err)
		fmt.Fprintf(os.Stderr, "segment: error: %s: %s\n", s.Code(), s.Message())
		os.Exit(1)
	}
	fmt.Printf("%s: %dx%d, model %s v%d\n", path, response.ImageWidth, response.ImageHeight,
		response.GetModel().GetName(), response.GetModel().GetVersion())
	for _, c := range response.Classes {
		box := c.GetBoundingBox()
		fmt.Printf("  %-12s %5.1f%%  box %d,%d %dx%d\n", c.Label, 100*c.Fraction, box.X, box.Y, box.Width, box.Height)
	}
	if cutout != "" {
		cut := response.GetCutout()
		if err := os.WriteFile(cutout, cut.GetImage(), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "segment: error: %v\n", err)
			os.Exit(2)
		}
		fmt.Printf("cut-out: %dx%d at %d,%d, written to %s\n", cut.GetWidth(), cut.GetHeight(),
			cut.GetBox().GetX(), cut.GetBox().GetY(), cutout)
	}
}
