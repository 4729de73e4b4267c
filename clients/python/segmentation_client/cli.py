"""`segment`: segment photos from the command line; writes masks, overlays and JSON summaries.

segment IMAGE_OR_DIR... [--server HOST:PORT] [--out DIR] [--json] [--mask-size original|model]
        [--mask-format png|raw|rle] [--no-overlay] [--overwrite] [--timeout SECONDS_PER_IMAGE]
        [--regions [CLASS...] [--min-area PIXELS] [--polygons] [--coco-rle]]
        [--cutout [CLASS...] [--soft] [--crop] [--margin PIXELS|N%] [--background HEX]
         [--cutout-format png|webp|jpeg+alpha|alpha]]
segment models [--server HOST:PORT] [--timeout SECONDS]
segment health [--server HOST:PORT] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
from collections.abc import Iterator

from segmentation_client.client import (
    DEFAULT_PORT,
    MAX_TIMEOUT_S,
    Cutout,
    Model,
    Regions,
    Segmentation,
    SegmentationClient,
    with_default_port,
)
from segmentation_client.errors import SegmentationError, UnavailableError
from segmentation_client.masks import encode_png

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
DEFAULT_SERVER = "localhost:50051"


def _images(paths: list[str]) -> tuple[list[pathlib.Path], list[pathlib.Path]]:
    """The images named or in the folders named, and the folders' other files (skipped by their names)."""
    found: list[pathlib.Path] = []
    skipped: list[pathlib.Path] = []
    for raw in paths:
        path = pathlib.Path(raw)
        if path.is_dir():
            for child in sorted(p for p in path.iterdir() if p.is_file()):
                (found if child.suffix.lower() in IMAGE_SUFFIXES else skipped).append(child)
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    return found, skipped


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


OUTPUT_SUFFIXES = (
    ".mask.png",
    ".overlay.png",
    ".json",
    ".cutout.png",
    ".cutout.webp",
    ".cutout.jpg",
    ".cutout-alpha.png",
)


def _taken(out: pathlib.Path, names: list[str]) -> list[pathlib.Path]:
    """The files in `out` a run writing results under `names` would replace or leave beside new ones."""
    candidates = (out / f"{name}{suffix}" for name in names for suffix in OUTPUT_SUFFIXES)
    return [path for path in candidates if path.exists()]


def _progress(total: int, enabled: bool) -> object:
    from tqdm import tqdm  # noqa: PLC0415

    return tqdm(total=total, unit="image", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def _write_file(path: pathlib.Path, data: bytes) -> None:
    """Written whole or not at all: to a temporary name in the same folder, then renamed over `path`, so an
    interrupt never leaves half a file under a result's name."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _write(out: pathlib.Path, name: str, result: Segmentation, summary: dict[str, object]) -> None:
    """The result's files under `name`; a file of that name from an earlier run that this one does not write (an
    overlay, with --no-overlay) is removed, so no name holds files of two inputs."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"mask": f"{name}.mask.png"}
    # The mask file is a palette PNG whatever the format on the wire.
    _write_file(out / files["mask"], result.mask_png or encode_png(result.mask))
    if result.overlay_png:
        files["overlay"] = f"{name}.overlay.png"
        _write_file(out / files["overlay"], result.overlay_png)
    if result.cutout is not None:
        for file_name, data in result.cutout.files(name).items():
            files["cutout_alpha" if file_name.endswith("-alpha.png") else "cutout"] = file_name
            _write_file(out / file_name, data)
    summary["files"] = files
    _write_file(out / f"{name}.json", (json.dumps(summary, indent=2) + "\n").encode())
    for stale in set(_taken(out, [name])) - {out / f for f in [*files.values(), f"{name}.json"]}:
        stale.unlink()


def percent(fraction: float) -> str:
    """As the page shows a share: a class too small to round to 0.1 % is "< 0.1 %", never "0.0 %"."""
    return "< 0.1 %" if 0 < fraction < 0.001 else f"{100 * fraction:.1f} %"


def _report(written: int, total: int, out: pathlib.Path | None, *, to_stderr: bool) -> None:
    if out is None:
        return
    line = f"wrote results for {written} of {total} images to {out}/" if written else f"nothing written to {out}/"
    print(line, file=sys.stderr if to_stderr else sys.stdout)


class Refused(Exception):
    """A run that cannot start as asked (exit status 2): nothing was sent or written."""


def _first_names(paths: list[pathlib.Path]) -> str:
    return ", ".join(p.name for p in paths[:3]) + (", ..." if len(paths) > 3 else "")


def _plan(args: argparse.Namespace) -> tuple[list[pathlib.Path], pathlib.Path | None, list[str]]:
    """The images, the output folder (None: results on stdout only) and each image's output name."""
    images, skipped = _images(args.images)
    if skipped:
        named = _first_names(skipped)
        print(f"segment: skipped {len(skipped)} file(s) not named as an image: {named}", file=sys.stderr)
    if not images:
        raise Refused("no images found (accepted: " + ", ".join(sorted(IMAGE_SUFFIXES)) + ")")
    out = None if args.json and not args.out else pathlib.Path(args.out or "segment-out")
    names = _output_names(images)
    if out is not None and not args.overwrite and (taken := _taken(out, names)):
        raise Refused(
            f"{out}/ already holds results under these names ({_first_names(taken)}); "
            "pass --overwrite to replace them, or choose another --out"
        )
    return images, out, names


def _print_results(summaries: list[dict[str, object]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summaries, indent=2))
        return
    for summary in summaries:
        if "error" not in summary:
            top = ", ".join(f"{c['label']} {percent(c['fraction'])}" for c in summary["classes"][:4])  # type: ignore[index]
            print(f"{summary['source']}: {top}")


def _segment(args: argparse.Namespace) -> int:
    images, out, names = _plan(args)
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
            regions=None
            if args.regions is None
            else Regions(tuple(args.regions), args.min_area, args.polygons, coco_rle=args.coco_rle),
            cutout=None
            if args.cutout is None
            else Cutout(
                tuple(args.cutout),
                soft=args.soft,
                crop=args.crop,
                margin=args.margin,
                background=args.background,
                format=args.cutout_format,
            ),
            timeout=min(args.timeout * len(images), MAX_TIMEOUT_S),
        )
        try:
            for item in items:
                bar.update(1)  # type: ignore[attr-defined]
                if item.error is not None:
                    failures += 1
                    print(f"segment: error: {item.source}: {item.error}", file=sys.stderr)
                    summaries.append(
                        {"source": item.source, "error": {"code": item.error.code.name, "message": item.error.message}}
                    )
                    if out is not None and args.overwrite:  # an earlier run's results for this name are not its
                        for stale in _taken(out, [names[item.index]]):
                            stale.unlink()
                    continue
                result = item.result
                assert result is not None
                summary = result.summary()
                if out is not None:
                    _write(out, names[item.index], result, summary)
                    written += 1
                summaries.append(summary)
        except BaseException:  # the service gone, or Ctrl-C: say what was written before going
            bar.close()  # type: ignore[attr-defined]
            _report(written, len(images), out, to_stderr=True)
            raise
    bar.close()  # type: ignore[attr-defined]
    _print_results(summaries, args.json)
    _report(written, len(images), out, to_stderr=args.json)
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


_MOST_SECONDS = 86400.0


def _seconds(text: str) -> float:
    """--timeout's value: a finite number of seconds above 0 and at most a day, else a usage error (exit 2)."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(seconds) and 0 < seconds <= _MOST_SECONDS):
        raise argparse.ArgumentTypeError(f"must be above 0 seconds and at most {_MOST_SECONDS:g} (a day), not {text!r}")
    return seconds


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
        parser.add_argument(
            "--overwrite",
            action="store_true",
            help="replace results of an earlier run in --out under the same names (default: refuse)",
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bar")
        parser.add_argument(
            "--regions",
            nargs="*",
            metavar="CLASS",
            default=None,
            help="list each class's connected regions in the summaries (only these classes, labels or ids, if "
            "named; default every class but the background)",
        )
        parser.add_argument(
            "--min-area", type=int, default=0, help="with --regions: leave out smaller regions (pixels)"
        )
        parser.add_argument("--polygons", action="store_true", help="with --regions: each region's outline")
        parser.add_argument("--coco-rle", action="store_true", help="with --regions: each region as COCO RLE")
        parser.add_argument(
            "--cutout",
            nargs="*",
            metavar="CLASS",
            default=None,
            help="write the photo cut out along these classes (labels or ids; default every class but the "
            "background) as NAME.cutout.png (or .webp, .jpg with NAME.cutout-alpha.png)",
        )
        parser.add_argument("--soft", action="store_true", help="with --cutout: soft edges from the probabilities")
        parser.add_argument("--crop", action="store_true", help="with --cutout: crop to the subject")
        parser.add_argument(
            "--margin", default="0", help="with --cutout --crop: a margin in pixels, or N%% of the subject's box"
        )
        parser.add_argument("--background", default="", help="with --cutout: a hex RGB colour for the background")
        parser.add_argument(
            "--cutout-format", choices=["png", "webp", "jpeg+alpha", "alpha"], default="png", help="(default png)"
        )
    parser.add_argument(
        "--server",
        default=DEFAULT_SERVER,
        help=f"host[:port] of the service (default {DEFAULT_SERVER}; port {DEFAULT_PORT} when none is given)",
    )
    timeout_help = (
        "seconds per image: all the images stream over one call, which must end within TIMEOUT times their number"
        if command == "segment"
        else "seconds for the call"
    )
    parser.add_argument(
        "--timeout", type=_seconds, default=60.0, help=f"{timeout_help}; above 0, at most a day (default 60)"
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Subcommands win over paths: to segment a folder named "models", write ./models.
    command = argv[0] if argv and argv[0] in ("models", "health") else "segment"
    args = _parser(command).parse_args(argv[1:] if command != "segment" else argv)
    args.server = with_default_port(args.server)  # as the client will, so that messages name the port used
    handlers = {"segment": _segment, "models": _models, "health": _health}
    try:
        code = handlers[command](args)
        sys.stdout.flush()  # here, where a closed pipe can still be told apart from other errors
        return code
    except KeyboardInterrupt:
        print("segment: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (`segment ... --json | head`): what is left to print has nowhere to go;
        # stdout points at /dev/null so that the interpreter's last flush does not fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a program a closed pipe stopped
    except UnavailableError as exc:
        print(f"segment: error: cannot reach the service at {args.server}: {exc.message}", file=sys.stderr)
        return 2
    except SegmentationError as exc:
        print(f"segment: error: {exc}", file=sys.stderr)
        return 1
    except (Refused, FileNotFoundError, ValueError) as exc:
        print(f"segment: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
