"""`segment`: segment photos from the command line; writes masks, overlays and JSON summaries.

segment IMAGE_OR_DIR... [--server HOST:PORT] [--out DIR] [--json] [--mask-size original|model]
        [--mask-format png|raw|rle] [--no-overlay] [--timeout SECONDS_PER_IMAGE]
segment models [--server HOST:PORT] [--timeout SECONDS]
segment health [--server HOST:PORT] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Iterator

from segmentation_client.client import Model, Segmentation, SegmentationClient
from segmentation_client.errors import SegmentationError, UnavailableError
from segmentation_client.masks import encode_png

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
DEFAULT_SERVER = "localhost:50051"


def _images(paths: list[str]) -> list[pathlib.Path]:
    found: list[pathlib.Path] = []
    for raw in paths:
        path = pathlib.Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    return found


def _output_names(images: list[pathlib.Path]) -> list[str]:
    """A base name per image for its output files: its stem, made unique (a.jpg and a.png: a, a-2)."""
    names: list[str] = []
    for image in images:
        name, n = image.stem, 1
        while name in names:
            n += 1
            name = f"{image.stem}-{n}"
        names.append(name)
    return names


def _progress(total: int, enabled: bool) -> object:
    from tqdm import tqdm  # noqa: PLC0415

    return tqdm(total=total, unit="image", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def _write(out: pathlib.Path, name: str, result: Segmentation, summary: dict[str, object]) -> None:
    files = {"mask": f"{name}.mask.png"}
    # The mask file is a palette PNG whatever the format on the wire.
    (out / files["mask"]).write_bytes(result.mask_png or encode_png(result.mask))
    if result.overlay_png:
        files["overlay"] = f"{name}.overlay.png"
        (out / files["overlay"]).write_bytes(result.overlay_png)
    summary["files"] = files
    (out / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")


def _segment(args: argparse.Namespace) -> int:
    images = _images(args.images)
    if not images:
        print("segment: error: no images found (accepted: " + ", ".join(sorted(IMAGE_SUFFIXES)) + ")", file=sys.stderr)
        return 2
    out: pathlib.Path | None = None if args.json and not args.out else pathlib.Path(args.out or "segment-out")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    names = _output_names(images)
    model = Model(name=args.model) if args.model else None
    summaries: list[dict[str, object]] = []
    failures = written = 0
    bar = _progress(len(images), enabled=not args.quiet and len(images) > 1)
    with SegmentationClient(args.server, timeout=args.timeout) as client:
        # One streaming call for all the images, so one deadline: --timeout for each of them, in total.
        items: Iterator = client.segment_many(
            images,
            model=model,
            mask_format=args.mask_format,
            mask_size=args.mask_size,
            overlay=out is not None and not args.no_overlay,
            timeout=args.timeout * len(images),
        )
        for item in items:
            bar.update(1)  # type: ignore[attr-defined]
            if item.error is not None:
                failures += 1
                print(f"segment: error: {item.source}: {item.error}", file=sys.stderr)
                summaries.append(
                    {"source": item.source, "error": {"code": item.error.code.name, "message": item.error.message}}
                )
                continue
            result = item.result
            assert result is not None
            summary = result.summary()
            if out is not None:
                _write(out, names[item.index], result, summary)
                written += 1
            summaries.append(summary)
    bar.close()  # type: ignore[attr-defined]
    if args.json:
        print(json.dumps(summaries, indent=2))
    else:
        for summary in summaries:
            if "error" in summary:
                continue
            top = ", ".join(f"{c['label']} {c['fraction']:.1%}" for c in summary["classes"][:4])  # type: ignore[index]
            print(f"{summary['source']}: {top}")
        if out is not None and written:
            print(f"wrote results for {written} of {len(images)} images to {out}/")
    return 1 if failures else 0


def _models(args: argparse.Namespace) -> int:
    with SegmentationClient(args.server, timeout=args.timeout) as client:
        models = client.models()
    if args.json:
        print(json.dumps([m.__dict__ | {"versions": [v.__dict__ for v in m.versions]} for m in models], indent=2))
        return 0
    for m in models:
        versions = ", ".join(f"{v.version} {v.state}" for v in m.versions) or f"unknown ({m.backend_error})"
        default = " (default)" if m.is_default else ""
        print(f"{m.name}{default}: input {m.input_size} px, {len(m.labels)} labels, versions: {versions}")
    return 0


def _health(args: argparse.Namespace) -> int:
    with SegmentationClient(args.server, timeout=args.timeout) as client:
        status = client.health(timeout=args.timeout)
    print(status)
    return 0 if status == "SERVING" else 1


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segment" if command == "segment" else f"segment {command}",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if command == "segment":
        parser.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR")
        parser.add_argument("--out", default=None, help="output folder (default segment-out; none with --json alone)")
        parser.add_argument("--model", default="", help="model name (default: the service's default)")
        parser.add_argument("--mask-size", choices=["original", "model"], default="original")
        parser.add_argument(
            "--mask-format",
            choices=["png", "raw", "rle"],
            default="png",
            help="the mask's encoding on the wire; the file written is a PNG either way (default png)",
        )
        parser.add_argument("--no-overlay", action="store_true", help="write no overlay (cheaper for large photos)")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"host:port of the service (default {DEFAULT_SERVER})")
    timeout_help = (
        "seconds per image: all the images stream over one call, which must end within TIMEOUT times their number"
        if command == "segment"
        else "seconds for the call"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help=f"{timeout_help} (default 60)")
    parser.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Subcommands win over paths: to segment a folder named "models", write ./models.
    command = argv[0] if argv and argv[0] in ("models", "health") else "segment"
    args = _parser(command).parse_args(argv[1:] if command != "segment" else argv)
    handlers = {"segment": _segment, "models": _models, "health": _health}
    try:
        return handlers[command](args)
    except UnavailableError as exc:
        print(f"segment: error: cannot reach the service at {args.server}: {exc.message}", file=sys.stderr)
        return 2
    except SegmentationError as exc:
        print(f"segment: error: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as exc:
        print(f"segment: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
