"""The Loihi 2 target: stock Lava processes, lava-dl netx files, per-core resource maps."""
