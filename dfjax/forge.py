"""`dfjax forge`: footage of several people in, a labelled deepfake dataset out.

Input is a `dfjax synth` folder (its identities, videos and face sets known exactly) or a folder of real
footage with one subfolder per person (`footage/<person>/*.mp4`). The stages, each skipped when its
output is already complete, so a stopped call is finished by the next one:

1. plan: identities are split into train / val / test (by `split.*`, with `seed`) before anything is
   trained, and the plan is kept in `DATASET/forge/plan.json`; a later call with other input is refused;
2. faces: real footage is extracted once per person into `DATASET/forge/facesets/<person>` (a synth
   folder's face sets are used as they are);
3. originals: every input video is copied to `original_sequences/dfjax/raw/videos/<person>_<k>.mp4`;
4. models: one swap model per split, trained on that split's people only (`forge/models/<split>`, the
   shared training core: a stopped training resumes);
5. fakes: every video is swapped into `fakes.per_video` other people of its split, faces taken from
   the extraction's alignments, into `manipulated_sequences/<method>/raw/videos/<person>_<k>_<target>.mp4`
   with the `dfjax swap` contract beside it (`.masks.mkv` exact per-pixel masks, `.json` sidecar with
   the manipulated frames, provenance tags), the masks also (hard-linked) at FaceForensics++'s place
   `manipulated_sequences/<method>/masks/videos/`; each fake appears only when complete;
6. `manifest.csv` (path, label, method, source, target, split; readable by `detect-eval`), the same
   per split (`manifest-train.csv`, `manifest-val.csv`, `manifest-test.csv`), and
   `forge.json` (config, plan, model steps and config hashes, counts, frames without a face, seconds
   per stage), written last.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import ml_collections

from dfjax import media
from dfjax.errors import UserError
from dfjax.io import atomic_write, read_json, write_json, write_text

SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = ("path", "label", "method", "source", "target", "split")


@dataclass(frozen=True)
class Footage:
    identity: str
    path: Path      # the input video
    stem: str       # its name in the dataset: <identity>_<k>


def discover(inputs: Path) -> tuple[dict[str, list[Footage]], dict[str, Path]]:
    """The input's videos per identity, and the face sets that already exist (a synth folder's)."""
    from dfjax.data.synthetic import is_complete

    inputs = Path(inputs)
    if not inputs.is_dir():
        raise UserError(f"{inputs} is not a folder; pass a `dfjax synth` output folder or a folder with one "
                        "subfolder of videos per person.")
    if is_complete(inputs):  # a dfjax synth render: identities, videos and face sets known exactly
        names = [n.strip() for n in read_json(inputs / "synth.json")["identities"].split(",")]
        videos = {n: [Footage(n, inputs / "videos" / f"{n}.mp4", f"{n}_0")] for n in names}
        return videos, {n: inputs / "facesets" / n for n in names}
    videos = {}
    for folder in sorted(p for p in inputs.iterdir() if p.is_dir() and not p.name.startswith(".")):
        clips = sorted(p for p in folder.iterdir() if media.is_video(p))
        if clips:
            videos[folder.name] = [Footage(folder.name, p, f"{folder.name}_{k}") for k, p in enumerate(clips)]
    return videos, {}


def plan_splits(identities: list[str], config: ml_collections.ConfigDict) -> dict[str, str]:
    """identity -> split: `split.test` and `split.val` people drawn with `seed`, the rest train."""
    n_test, n_val = int(config.split.test), int(config.split.val)
    for name, count in (("split.test", n_test), ("split.val", n_val)):
        if count == 1 or count < 0:
            raise UserError(f"{name}={count} is impossible: a split's swap model swaps among its own people, so "
                            "give 0 or 2 or more.")
    n_train = len(identities) - n_test - n_val
    if n_train < 2:
        raise UserError(f"{len(identities)} identities leave {max(n_train, 0)} for training after split.test="
                        f"{n_test} and split.val={n_val}; a swap model needs 2 or more people per split: add "
                        "footage of more people or hold out fewer.")
    order = sorted(identities)
    random.Random(config.seed).shuffle(order)
    splits = ["test"] * n_test + ["val"] * n_val + ["train"] * n_train
    return dict(sorted(zip(order, splits)))


def targets_of(footage: Footage, index: int, people: list[str], per_video: int) -> list[str]:
    """The `per_video` other people of the split that video number `index` is swapped into (in turn)."""
    others = [p for p in people if p != footage.identity]
    return [others[(index + j) % len(others)] for j in range(min(per_video, len(others)))]


def _check_plan(plan_file: Path, plan: dict) -> None:
    """Refuse to continue a dataset forged from other input or with another split."""
    if plan_file.exists() and read_json(plan_file) != plan:
        raise UserError(f"{plan_file.parent.parent} was forged from other input or another split plan; "
                        "choose a new -o, or run with the same input and config.")


def _copy_original(footage: Footage, target: Path) -> None:
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(footage.path, "rb") as source:
        atomic_write(target, lambda f: shutil.copyfileobj(source, f))


def _extract_faces(footage: list[Footage], target: Path, config, progress) -> Path:
    from dfjax.extract import extract
    from dfjax.faces.pipeline import ExtractOptions

    if not (target / "faceset.json").exists():
        extract([f.path for f in footage], target, ExtractOptions(size=config.faces.size,
                                                                   detector=config.faces.detector),
                progress=progress)
    return target


def _train_split(split: str, sets: dict[str, Path], root: Path, config, progress) -> Path:
    from dfjax.config import load_config
    from dfjax.training.core import train

    workdir = root / "forge" / "models" / split
    done = workdir / "forge_done.json"
    if done.exists():
        return workdir
    cfg = load_config(config.model.config, [f"data.identities={','.join(str(p) for p in sets.values())!r}",
                                            f"train.steps={int(config.model.steps)}",
                                            f"train.batch_per_side={int(config.model.batch_per_side)}",
                                            f"log.checkpoint_every={int(config.model.checkpoint_every)}",
                                            f"seed={int(config.seed)}"])
    summary = train(cfg, workdir, progress=progress)
    if summary.get("stopped_by") != "finished":
        raise UserError(f"training the {split} model stopped ({summary.get('stopped_by')}); run `dfjax forge` "
                        "again to resume it.")
    write_json(done, {"step": summary["step"], "loss": summary["loss"]})
    return workdir


def parse_shard(spec: str | None) -> tuple[int, int]:
    """`--shard I/N` (0 <= I < N) as (I, N); None: the whole job, (0, 1)."""
    if not spec:
        return 0, 1
    try:
        index, count = (int(part) for part in spec.split("/"))
    except ValueError:
        index, count = -1, 0
    if not 0 <= index < count:
        raise UserError(f"--shard {spec!r} is not I/N with 0 <= I < N (e.g. 0/4 ... 3/4 for four processes); fix it.")
    return index, count


def forge(inputs: str | Path, output: str | Path, config: ml_collections.ConfigDict, *, shard: str | None = None,
          progress=None) -> dict:
    """Build (or finish) the dataset `output` from `inputs`; returns the summary written to forge.json.

    shard "I/N": this process extracts the people, trains the split models and makes the fakes whose
    number is I modulo N, each stage only once the stage before is complete (by any process); a call
    that finds work of other shards unfinished says so and stops. Run every shard (a job array, a
    cluster launcher), then once more, with or without --shard, to finish what is left and write the
    manifest: a call writes it only when the whole dataset is there.
    """
    from dfjax.io import check_writable
    from dfjax.swap import SwapOptions, Swapper, swap_video
    from dfjax.training.core import load_trained

    inputs, output = Path(inputs), Path(output)
    mine, of = parse_shard(shard)
    check_writable(output, folder=True)
    videos, facesets = discover(inputs)
    if len(videos) < 2:
        raise UserError(f"{inputs} holds videos of {len(videos)} person(s); forge needs footage of several people "
                        "(one subfolder of videos per person), at least 4 to hold some out for testing.")
    splits = plan_splits(list(videos), config)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    plan = {"input": str(inputs.resolve()), "seed": int(config.seed), "splits": splits,
            "videos": {p: [f.stem for f in v] for p, v in videos.items()}}
    _check_plan(output / "forge" / "plan.json", plan)
    for footage in (f for v in videos.values() for f in v):
        media.probe(footage.path)  # an unreadable video is refused before anything is written

    if not facesets:
        facesets = {p: output / "forge" / "facesets" / p for p in videos}
        for k, (person, footage) in enumerate(videos.items()):
            if k % of == mine:
                _extract_faces(footage, facesets[person], config, progress)
    write_json(output / "forge" / "plan.json", plan)  # the faces are there: the plan holds from now on
    _wait_for([p for p, f in facesets.items() if not (f / "faceset.json").exists()], "the face sets of")
    seconds["faces"], clock = round(time.perf_counter() - clock, 1), time.perf_counter()

    originals = output / "original_sequences" / "dfjax" / "raw" / "videos"
    for footage in (f for v in videos.values() for f in v):
        _copy_original(footage, originals / f"{footage.stem}{footage.path.suffix}")
    seconds["originals"], clock = round(time.perf_counter() - clock, 1), time.perf_counter()

    groups = {s: [p for p, split in splits.items() if split == s] for s in SPLITS}
    models = {s: output / "forge" / "models" / s for s, people in groups.items() if people}
    for k, split in enumerate(models):
        if k % of == mine:
            _train_split(split, {p: facesets[p] for p in groups[split]}, output, config, progress)
    _wait_for([s for s, m in models.items() if not (m / "forge_done.json").exists()], "the swap models of split")
    seconds["models"], clock = round(time.perf_counter() - clock, 1), time.perf_counter()

    fakes_dir = output / "manipulated_sequences" / config.fakes.method / "raw" / "videos"
    rows, pending, number = [], [], 0
    loaded, swappers = {}, {}  # each split's model loaded once, one compiled swapper per target

    def swapper_for(split: str, target: str) -> Swapper:
        if split not in loaded:
            loaded[split] = load_trained(models[split], "swap")
        if (split, target) not in swappers:
            options = SwapOptions(to=target, color="reinhard", crf=int(config.fakes.crf))
            swappers[split, target] = Swapper(loaded[split], options)
        return swappers[split, target]

    for person, footage_list in videos.items():
        split = splits[person]
        for index, footage in enumerate(footage_list):
            rows.append({"path": os.path.relpath(originals / f"{footage.stem}{footage.path.suffix}", output),
                         "label": 0, "method": "real", "source": person, "target": "", "split": split})
            for target in targets_of(footage, index, groups[split], int(config.fakes.per_video)):
                fake = fakes_dir / f"{footage.stem}_{target}.mp4"
                number += 1
                if not fake.exists() and (number - 1) % of == mine:  # the video, masks and sidecar are renamed
                    swap_video(swapper_for(split, target), footage.path, fake, None, progress,  # into place together
                               alignments=facesets[person])
                if not fake.exists():
                    pending.append(fake.stem)
                    continue
                mask = fakes_dir.parent.parent / "masks" / "videos" / f"{fake.stem}.mkv"  # FaceForensics++'s place
                if not mask.exists():
                    mask.parent.mkdir(parents=True, exist_ok=True)
                    os.link(fake.with_suffix(".masks.mkv"), mask)  # the same file, not a copy
                rows.append({"path": os.path.relpath(fake, output), "label": 1, "method": config.fakes.method,
                             "source": person, "target": target, "split": split})
    _wait_for(pending, "the fakes")
    seconds["fakes"] = round(time.perf_counter() - clock, 1)

    summary = _summarise(output, config, plan, models, rows, seconds)
    for name, chosen in [("manifest.csv", rows)] + [(f"manifest-{s}.csv", [r for r in rows if r["split"] == s])
                                                     for s in SPLITS]:
        if chosen:  # the whole dataset, and each split alone (e.g. detect-eval --train ...-train.csv --test ...)
            lines = [",".join(MANIFEST_COLUMNS)] + [",".join(str(r[c]) for c in MANIFEST_COLUMNS) for r in chosen]
            write_text(output / name, "\n".join(lines) + "\n")
    write_json(output / "forge.json", summary)
    return summary


class ShardWaiting(Exception):
    """Work of other shards is not finished yet: this call did its part and stops (not an error)."""


def _wait_for(missing: list[str], what: str) -> None:
    if missing:
        raise ShardWaiting(f"{what} {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} are not done yet "
                           "(other shards' work); run the remaining shards, then `dfjax forge` once more to finish.")


def _summarise(output: Path, config, plan: dict, models: dict[str, Path], rows: list[dict],
               seconds: dict[str, float]) -> dict:
    counts = {s: {"real": sum(r["split"] == s and r["label"] == 0 for r in rows),
                  "fake": sum(r["split"] == s and r["label"] == 1 for r in rows)} for s in SPLITS}
    frames = without_face = 0
    model_info = {split: {"workdir": os.path.relpath(workdir, output),
                          "identities": [p for p, split_of in plan["splits"].items() if split_of == split]}
                  for split, workdir in models.items()}
    for r in rows:
        if r["label"] == 1:  # the swap's sidecar says which frames it changed and with which checkpoint
            sidecar = json.loads((output / r["path"]).with_suffix(".json").read_text())
            frames += len(sidecar["frames"])
            without_face += sum(not f["manipulated"] for f in sidecar["frames"])
            model_info[r["split"]].update(step=sidecar["model"]["step"], config_hash=sidecar["model"]["config_hash"])
    return {"dataset": str(output), "config": config.to_dict(), "plan": plan, "models": model_info,
            "counts": counts, "fake_frames": frames, "fake_frames_without_face": without_face,
            "seconds": seconds, "manifest": "manifest.csv"}

