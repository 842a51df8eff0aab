"""Build the demo IVR prompts: ivr/prompts.toml -> ivr/prompts/<lang>/<name>.wav.

The manifest is TOML, not YAML, because every ``ivr/*.yaml`` is a flow.
Speech is synthesized by espeak-ng and resampled to 8 kHz mono 16-bit PCM by
sox (``tools.prompts.make_speech``). Incremental: a WAV is rebuilt only when
its text, voice, speed or rate changed (``prompts/.built.json`` remembers a
hash per file) or the file is missing. Each file is written under a
temporary name and renamed, so a flow never sees half a WAV.

Usage (from the repository root)::

    python ivr/build_prompts.py [--out DIR] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RATE = 8000

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def load_manifest(path: Path = HERE / "prompts.toml") -> dict:
    import tomllib

    manifest = tomllib.loads(path.read_text(encoding="utf-8"))
    voices = manifest["voices"]
    for name, texts in manifest["prompts"].items():
        missing = set(voices) - set(texts)
        if missing:
            raise ValueError(f"{path}: prompt {name!r} has no text for {sorted(missing)}")
    return manifest


def build_prompts(
    out: Path = HERE / "prompts", *, force: bool = False, manifest_path: Path = HERE / "prompts.toml"
) -> list[Path]:
    """Make every prompt WAV that is missing or stale; returns the files written."""
    from tools.prompts import make_speech

    manifest = load_manifest(manifest_path)
    speed = int(manifest.get("speed", 175))
    out.mkdir(parents=True, exist_ok=True)
    index_path = out / ".built.json"
    try:
        index = json.loads(index_path.read_text()) if not force else {}
    except (OSError, ValueError):
        index = {}
    written = []
    for name, texts in sorted(manifest["prompts"].items()):
        for lang, voice in manifest["voices"].items():
            text = texts[lang]
            target = out / lang / f"{name}.wav"
            key = f"{lang}/{name}"
            digest = hashlib.sha256(f"{voice}|{speed}|{RATE}|{text}".encode()).hexdigest()[:16]
            if index.get(key) == digest and target.is_file():
                continue
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp.wav")
            make_speech(text, tmp, rate=RATE, voice=voice, speed=speed)
            os.replace(tmp, target)
            index[key] = digest
            written.append(target)
    tmp_index = index_path.with_name(f".built.{os.getpid()}.tmp")
    tmp_index.write_text(json.dumps(index, indent=1, sort_keys=True))
    os.replace(tmp_index, index_path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "prompts")
    parser.add_argument("--force", action="store_true", help="rebuild every file")
    args = parser.parse_args(argv)
    written = build_prompts(args.out, force=args.force)
    print(f"ivr prompts: {len(written)} file(s) written in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
