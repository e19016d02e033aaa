"""labkit: the instructor side of the course labs (config, naming, emulator, labctl)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
