"""`dfjax forge`: footage of several people in, a labelled deepfake dataset out.

Input is a `dfjax synth` folder (its identities, videos and face sets known exactly) or a folder of real
footage with one subfolder per person (`footage/<person>/*.mp4`). The stages, each skipped when its
output is already complete, so a stopped call is finished by the next one:

1. plan: identities are split into train / val / test (by `split.*`, with `seed`) before anything is
   trained, and the plan is kept in `DATASET/forge/plan.json`; a later call with other input is refused;
2. faces: real footage is extracted once per person into `DATASET/forge/facesets/<person>` (a synth
   folder's face sets are used as they are);
3. originals: every input video is copied to `original_sequences/dfjax/raw/videos/<person>_<k>.mp4`
   (and, for FOMM, one still of each person with a face to `forge/stills/<person>.png`);
4. models: per method (`methods`) and split, its model trained on that split's people only
   (`forge/models/<method>/<split>`; the reenactor one per person, `.../<split>/<person>`; the shared
   training core: a stopped training resumes);
5. fakes: every video is faked with `fakes.per_video` other people of its split by every method, into
   `manipulated_sequences/<method>/raw/videos/<person>_<k>_<target>.mp4`: a swap puts the target's face
   on the video (faces from the extraction's alignments); FOMM animates the target's still with the
   video's motion; the reenactor drives the target with the video's face. Each has the `dfjax swap`
   contract beside it (`.masks.mkv` exact per-pixel masks, `.json` sidecar with the manipulated frames,
   provenance tags), the masks also (hard-linked) at FaceForensics++'s place
   `manipulated_sequences/<method>/masks/videos/`; each fake appears only when complete;
6. compressions: copies of every video at H.264 CRF 23 and 40 under `<c23|c40>/videos/` beside `raw/`
   (`fakes.compressions`), as FaceForensics++ ships them;
7. `manifest.csv` (path, label, method, source, target, split; readable by `detect-eval`), the same
   per split (`manifest-train.csv`, ...), the same per compression (`manifest-c23.csv`,
   `manifest-c23-test.csv`, ...), and `forge.json` (config, plan, models with steps and config hashes,
   counts, frames without a face, seconds per stage), written last.
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
import numpy as np

from dfjax import media
from dfjax.errors import UserError
from dfjax.io import atomic_write, read_json, write_json, write_text

SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = ("path", "label", "method", "source", "target", "split")
COMPRESSIONS = {"c23": 23, "c40": 40}  # FaceForensics++'s H.264 constant rate factors


@dataclass(frozen=True)
class Method:
    name: str     # its folder under manipulated_sequences/
    kind: str     # swap | animate | reenact: how its fakes are made
    section: str  # the forge config section of its model (config, steps, batch, checkpoint_every)


METHODS = {m.name: m for m in (Method("DFJaxAE", "swap", "model"), Method("DFJaxDVP", "swap", "dvp"),
                               Method("DFJaxFOMM", "animate", "fomm"), Method("DFJaxDVPR", "reenact", "reenact"))}
PER_TARGET = {m.name for m in METHODS.values() if m.kind == "reenact"}  # one model per target person


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


def chosen_methods(config: ml_collections.ConfigDict) -> list[Method]:
    """The methods of `methods` (comma-separated names of METHODS, in the order given, or `all`)."""
    names = [n.strip() for n in str(config.methods).split(",") if n.strip()]
    if names == ["all"]:
        names = list(METHODS)
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        raise UserError(f"methods={config.methods!r} names {', '.join(unknown) or 'no method'}; choose from "
                        f"{', '.join(METHODS)} (comma-separated), or all.")
    return [METHODS[n] for n in dict.fromkeys(names)]


def chosen_compressions(config: ml_collections.ConfigDict) -> list[str]:
    """The extra copies of `fakes.compressions` (comma-separated c23 / c40)."""
    names = [n.strip() for n in str(config.fakes.compressions).split(",") if n.strip()]
    unknown = [n for n in names if n not in COMPRESSIONS]
    if unknown:
        raise UserError(f"fakes.compressions={config.fakes.compressions!r}: {', '.join(unknown)} is not one of "
                        f"{', '.join(COMPRESSIONS)}; fix it (the raw copy is always made).")
    return list(dict.fromkeys(names))


def check_config(config: ml_collections.ConfigDict) -> tuple[list[Method], list[str]]:
    """The methods and compressed copies `config` asks for; a UserError naming the first setting that
    cannot be used (methods, fakes.compressions, fakes.preset)."""
    methods, compressions = chosen_methods(config), chosen_compressions(config)
    media.check_preset(str(config.fakes.preset), "fakes.preset")
    return methods, compressions


def _train(method: Method, job: str, sets: list[Path], workdir: Path, config, progress) -> Path:
    """Train (or resume) one model of `method` on the face sets `sets`; `job` names it in messages."""
    from dfjax.config import load_config
    from dfjax.training.core import train

    done = workdir / "forge_done.json"
    if done.exists():
        return workdir
    section = config[method.section]
    data = ([f"data.a={str(sets[0])!r}"] if method.kind == "reenact"
            else [f"data.identities={','.join(str(p) for p in sets)!r}"])
    batch = "train.batch" if method.kind == "animate" else "train.batch_per_side"
    cfg = load_config(section.config, data + [f"train.steps={int(section.steps)}", f"{batch}={int(section.batch)}",
                                              f"log.checkpoint_every={int(section.checkpoint_every)}",
                                              f"seed={int(config.seed)}"])
    summary = train(cfg, workdir, progress=progress)
    if summary.get("stopped_by") != "finished":
        raise UserError(f"training the {job} model stopped ({summary.get('stopped_by')}); run `dfjax forge` "
                        "again to resume it.")
    write_json(done, {"step": summary["step"], "loss": summary["loss"]})
    return workdir


def model_jobs(methods: list[Method], groups: dict[str, list[str]], root: Path) -> dict[tuple, Path]:
    """(method, split, person or "") -> workdir of every model the dataset needs: one per method and split,
    the reenactor one per person of a split (it learns one target)."""
    jobs = {}
    for method in methods:
        for split, people in groups.items():
            if len(people) < 2:
                continue
            base = root / "forge" / "models" / method.name / split
            if method.kind == "reenact":
                jobs.update({(method.name, split, p): base / p for p in people})
            else:
                jobs[method.name, split, ""] = base
    return jobs


def face_landmarks(footage: Footage, faceset: Path) -> dict[int, np.ndarray]:
    """frame index -> the 68 landmarks of the (first) face the extraction found in that frame of `footage`."""
    from dfjax.swap import find_alignments

    faces = find_alignments(footage.path, faceset)["faces"]
    return {int(i): np.asarray(f[0]["landmarks"], np.float32) for i, f in sorted(faces.items()) if f}


def still_of(person: str, footage: Footage, faceset: Path, target: Path) -> tuple[Path, np.ndarray]:
    """(PNG, its 68 landmarks) of a frame of the person's first video with a face (the middle one of the
    extraction): the photo FOMM animates."""
    found = face_landmarks(footage, faceset)
    if not found:
        raise UserError(f"{footage.path} has no frame with a face in {faceset}; give footage that shows {person}'s face.")
    wanted = sorted(found)[len(found) // 2]
    if not target.exists():
        frame = next(f for _, f in media.iter_frames(footage.path, start=wanted, stop=wanted + 1))
        target.parent.mkdir(parents=True, exist_ok=True)
        media.write_image(target, frame)
    return target, found[wanted]


def transcode(source: Path, target: Path, crf: int, preset: str) -> None:
    """A copy of `source` re-encoded with H.264 at `crf` (FaceForensics++'s c23 / c40) and x264's `preset`,
    with its tags and audio."""
    info = media.probe(source)
    with media.VideoWriter(target, info.fps, info.width, info.height, crf=crf, preset=preset, audio_from=source,
                           metadata=media.container_metadata(source)) as writer:
        for _, frame in media.iter_frames(source):
            writer.write(frame)


class _Clock:
    """Wall and CPU seconds per stage (`seconds`, `cpu_seconds`): CPU of this process's threads and of its
    worker processes that have finished (face finding's pools end with their stage)."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), self._cpu()
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}

    @staticmethod
    def _cpu() -> float:
        import resource

        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    def lap(self, stage: str) -> None:
        """Record the time since the last lap as `stage`'s."""
        wall, cpu = time.perf_counter(), self._cpu()
        self.seconds[stage], self.cpu_seconds[stage] = round(wall - self.wall, 1), round(cpu - self.cpu, 1)
        self.wall, self.cpu = wall, cpu


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


class Fakes:
    """Makes one fake of any method, each split's models loaded once (one compiled swapper per target)."""

    def __init__(self, config, models: dict[tuple, Path], facesets: dict[str, Path], stills: dict[str, tuple],
                 progress=None):
        self.config, self.models, self.facesets, self.stills, self.progress = config, models, facesets, stills, progress
        self.encoding = {"crf": int(config.fakes.crf), "preset": str(config.fakes.preset)}  # every method's fakes
        self._loaded, self._swappers, self._landmarks, self._stored = {}, {}, {}, {}

    def _driver_landmarks(self, footage: Footage) -> list[np.ndarray]:
        """The extraction's landmarks of every face of `footage`, read once for all its targets."""
        if footage.stem not in self._landmarks:
            self._landmarks[footage.stem] = list(face_landmarks(footage, self.facesets[footage.identity]).values())
        return self._landmarks[footage.stem]

    def _stored_faces(self, person: str) -> Path | None:
        """The person's face set when it holds landmarks, pose and gaze (reenact drives with them), else None
        (faces found live); checked once per person."""
        from dfjax.data.faceset import FaceSet

        if person not in self._stored:
            self._stored[person] = self.facesets[person]
            try:
                FaceSet(self.facesets[person]).require("landmarks", "pose", "gaze")
            except UserError:
                self._stored[person] = None
        return self._stored[person]

    def _swapper(self, method: Method, split: str, target: str):
        from dfjax.swap import SwapOptions, Swapper
        from dfjax.training.core import load_trained

        if (method.name, split) not in self._loaded:
            self._loaded[method.name, split] = load_trained(self.models[method.name, split, ""], "swap")
        if (method.name, split, target) not in self._swappers:
            options = SwapOptions(to=target, color="reinhard", **self.encoding)
            self._swappers[method.name, split, target] = Swapper(self._loaded[method.name, split], options)
        return self._swappers[method.name, split, target]

    def make(self, method: Method, split: str, footage: Footage, target: str, fake: Path) -> None:
        if method.kind == "swap":
            from dfjax.swap import swap_video

            swap_video(self._swapper(method, split, target), footage.path, fake, None, self.progress,
                       alignments=self.facesets[footage.identity])
        elif method.kind == "animate":
            from dfjax.animate import AnimateOptions, animate

            still, landmarks = self.stills[target]  # the faces the extraction found: no detection on them
            animate(self.models[method.name, split, ""], still, footage.path, fake,
                    AnimateOptions(**self.encoding), overwrite=True, progress=self.progress,
                    source_landmarks=landmarks, driver_landmarks=self._driver_landmarks(footage))
        else:
            from dfjax.reenact import ReenactOptions, reenact

            reenact(self.models[method.name, split, target], footage.path, fake,
                    ReenactOptions(**self.encoding), driver_faces=self._stored_faces(footage.identity),
                    overwrite=True, progress=self.progress)


def forge(inputs: str | Path, output: str | Path, config: ml_collections.ConfigDict, *, shard: str | None = None,
          progress=None) -> dict:
    """Build (or finish) the dataset `output` from `inputs`; returns the summary written to forge.json.

    shard "I/N": this process extracts the people, trains the models and makes the fakes (and their
    compressed copies) whose number is I modulo N, each stage only once the stage before is complete (by
    any process); a call that finds work of other shards unfinished says so and stops. Run every shard
    (a job array, a cluster launcher, or `--jobs`), then once more, with or without --shard, to finish
    what is left and write the manifest: a call writes it only when the whole dataset is there.
    """
    from dfjax.io import check_writable

    inputs, output = Path(inputs), Path(output)
    mine, of = parse_shard(shard)
    methods, compressions = check_config(config)
    check_writable(output, folder=True)
    videos, facesets = discover(inputs)
    if len(videos) < 2:
        raise UserError(f"{inputs} holds videos of {len(videos)} person(s); forge needs footage of several people "
                        "(one subfolder of videos per person), at least 4 to hold some out for testing.")
    splits = plan_splits(list(videos), config)
    clock = _Clock()
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
    clock.lap("faces")

    originals = output / "original_sequences" / "dfjax" / "raw" / "videos"
    for footage in (f for v in videos.values() for f in v):
        _copy_original(footage, originals / f"{footage.stem}{footage.path.suffix}")
    stills = {}
    if any(m.kind == "animate" for m in methods):
        stills = {p: still_of(p, v[0], facesets[p], output / "forge" / "stills" / f"{p}.png") for p, v in videos.items()}
    clock.lap("originals")

    groups = {s: [p for p, split in splits.items() if split == s] for s in SPLITS}
    models = model_jobs(methods, groups, output)
    for k, ((name, split, person), workdir) in enumerate(models.items()):
        if k % of == mine:
            people = [person] if person else groups[split]
            _train(METHODS[name], f"{name} {split}{' ' + person if person else ''}",
                   [facesets[p] for p in people], workdir, config, progress)
    _wait_for([str(w.relative_to(output / "forge" / "models")) for w in models.values()
               if not (w / "forge_done.json").exists()], "the models")
    clock.lap("models")

    rows, pending, number = [], [], 0
    fakes = Fakes(config, models, facesets, stills, progress)
    for person, footage_list in videos.items():
        split = splits[person]
        for index, footage in enumerate(footage_list):
            rows.append({"path": os.path.relpath(originals / f"{footage.stem}{footage.path.suffix}", output),
                         "label": 0, "method": "real", "source": person, "target": "", "split": split})
            for method in methods:
                fakes_dir = output / "manipulated_sequences" / method.name / "raw" / "videos"
                for target in targets_of(footage, index, groups[split], int(config.fakes.per_video)):
                    fake = fakes_dir / f"{footage.stem}_{target}.mp4"
                    number += 1
                    if not fake.exists() and (number - 1) % of == mine:  # the video, masks and sidecar appear
                        fakes.make(method, split, footage, target, fake)  # together, only when complete
                    if not fake.exists():
                        pending.append(fake.stem)
                        continue
                    mask = fakes_dir.parent.parent / "masks" / "videos" / f"{fake.stem}.mkv"  # FaceForensics++'s place
                    if not mask.exists():
                        mask.parent.mkdir(parents=True, exist_ok=True)
                        os.link(fake.with_suffix(".masks.mkv"), mask)  # the same file, not a copy
                    rows.append({"path": os.path.relpath(fake, output), "label": 1, "method": method.name,
                                 "source": person, "target": target, "split": split})
    _wait_for(pending, "the fakes")
    clock.lap("fakes")

    copies = [(c, r) for c in compressions for r in rows]
    for k, (compression, row) in enumerate(copies):
        copy = output / compressed_path(row["path"], compression)
        if not copy.exists() and k % of == mine:
            transcode(output / row["path"], copy, COMPRESSIONS[compression], str(config.fakes.preset))
    _wait_for([compressed_path(r["path"], c) for c, r in copies if not (output / compressed_path(r["path"], c)).exists()],
              "the compressed copies")
    if compressions:
        clock.lap("compressions")

    summary = _summarise(output, config, plan, models, rows, clock.seconds, [m.name for m in methods], compressions)
    summary["cpu_seconds"] = clock.cpu_seconds  # this process's threads and its finished worker processes
    for compression in ["raw"] + compressions:
        prefix = "manifest" if compression == "raw" else f"manifest-{compression}"
        at = [dict(r, path=compressed_path(r["path"], compression)) for r in rows]
        for name, chosen in [(f"{prefix}.csv", at)] + [(f"{prefix}-{s}.csv", [r for r in at if r["split"] == s])
                                                       for s in SPLITS]:
            if chosen:  # the whole dataset, and each split alone (e.g. detect-eval --train ...-train.csv --test ...)
                lines = [",".join(MANIFEST_COLUMNS)] + [",".join(str(r[c]) for c in MANIFEST_COLUMNS) for r in chosen]
                write_text(output / name, "\n".join(lines) + "\n")
    write_json(output / "forge.json", summary)
    return summary


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a manifest, as dicts of strings."""
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def compressed_path(path: str, compression: str) -> str:
    """The dataset-relative path of a raw video's copy at `compression` (raw: the path itself)."""
    parts = Path(path).parts
    return str(Path(*parts[:2], compression, *parts[3:])) if compression != "raw" else path


def run_jobs(args: list[str], jobs: int, echo=print) -> None:
    """`dfjax forge ARGS --shard I/JOBS` for every I at once, as child processes, round after round until the
    dataset is complete: a stage needs the stage before it from every shard, so each round ends when every
    shard has gone as far as it can (at most one round per stage)."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "dfjax.cli", "forge", *args, "--quiet"]
    for round_number in range(1, len(STAGES) + 2):
        started = time.perf_counter()
        children = [subprocess.Popen([*command, "--shard", f"{i}/{jobs}"], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True) for i in range(jobs)]
        outputs = [child.communicate()[0] for child in children]
        failed = [(c.returncode, o) for c, o in zip(children, outputs) if c.returncode != 0]
        if failed:
            code, text = failed[0]
            errors = [line for line in text.splitlines() if line.startswith("error:")]
            if code == 2 and errors:
                raise UserError(errors[-1].removeprefix("error:").strip())
            raise RuntimeError(f"a forge job exited with code {code}:\n{text[-3000:]}")
        waiting = sum("did its part" in o for o in outputs)
        echo(f"round {round_number}: {jobs} jobs, {jobs - waiting} finished the dataset, "
             f"{time.perf_counter() - started:.1f} s")
        if waiting < jobs:
            return
    raise RuntimeError(f"the dataset was not complete after {len(STAGES) + 1} rounds of {jobs} jobs")


STAGES = ("faces", "originals", "models", "fakes", "compressions", "manifest")


class ShardWaiting(Exception):
    """Work of other shards is not finished yet: this call did its part and stops (not an error)."""


def _wait_for(missing: list[str], what: str) -> None:
    if missing:
        raise ShardWaiting(f"{what} {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} are not done yet "
                           "(other shards' work); run the remaining shards, then `dfjax forge` once more to finish.")


def model_name(method: str, split: str, person: str = "") -> str:
    """A model's name in forge.json: method/split, or method/split/person for one trained per target."""
    return "/".join(part for part in (method, split, person) if part)


def _summarise(output: Path, config, plan: dict, models: dict[tuple, Path], rows: list[dict],
               seconds: dict[str, float], methods: list[str], compressions: list[str]) -> dict:
    counts = {s: {"real": sum(r["split"] == s and r["label"] == 0 for r in rows),
                  "fake": sum(r["split"] == s and r["label"] == 1 for r in rows)} for s in SPLITS}
    per_method = {m: sum(r["method"] == m for r in rows) for m in methods}
    frames = without_face = 0
    model_info = {model_name(*key): {"workdir": os.path.relpath(workdir, output),
                                     "identities": [key[2]] if key[2] else
                                     [p for p, s in plan["splits"].items() if s == key[1]]}
                  for key, workdir in models.items()}
    for r in rows:
        if r["label"] == 1:  # the fake's sidecar says which frames it changed and with which checkpoint
            sidecar = json.loads((output / r["path"]).with_suffix(".json").read_text())
            frames += len(sidecar["frames"])
            without_face += sum(not f["manipulated"] for f in sidecar["frames"])
            key = model_name(r["method"], r["split"], r["target"] if r["method"] in PER_TARGET else "")
            model_info[key].update(step=sidecar["model"]["step"], config_hash=sidecar["model"]["config_hash"])
    return {"dataset": str(output), "config": config.to_dict(), "plan": plan, "methods": methods,
            "compressions": ["raw"] + compressions, "models": model_info, "counts": counts,
            "fakes_per_method": per_method, "fake_frames": frames, "fake_frames_without_face": without_face,
            "seconds": seconds, "manifest": "manifest.csv"}
