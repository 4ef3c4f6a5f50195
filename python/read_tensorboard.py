"""Reads a gfn run folder's TensorBoard events with TensorBoard's own reader and prints them as
JSON: every scalar series, the text summaries and the images' sizes.

    python python/read_tensorboard.py RUN_DIR

The tests (tests/tests/tensorboard.rs) compare its output with the run's metrics.jsonl.
"""

import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main(run_dir: str) -> None:
    # size_guidance 0: keep every event (the default samples long series).
    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    out = {
        "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
        "images": {t: [[e.step, e.width, e.height] for e in acc.Images(t)] for t in tags["images"]},
        "text": {
            t: [e.tensor_proto.string_val[0].decode() for e in acc.Tensors(t)]
            for t in tags["tensors"]
        },
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
