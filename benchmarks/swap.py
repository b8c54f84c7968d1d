"""End-to-end `dfjax swap` throughput on a real 720p video, beside the ceiling its stages imply.

  python benchmarks/swap.py                                   # ../shared/data/real/ffpp_004.mp4, a tiny model
  python benchmarks/swap.py VIDEO --model runs/sae128 --workers 1,2,0 --out benchmarks/results/swap-$(date +%F).jsonl
  python benchmarks/swap.py --workers 1 --repeats 3 --presets "" --no-marginal   # the median of 3 measurements

Without --model it trains a throw-away tiny model for a few steps on synthetic faces (the timing does
not depend on how good the model is, only on its size). One line per stage measured alone, in this
process, with its CPU milliseconds per frame (process time: every thread of the process counts):
decode (into memory, as the pipeline decodes into its ring); face finding (the swap's own tracker
settings, run in-process as one worker runs them, on the decoded frames); batched inference; colour,
mask and paste-back; H.264 encoding; FFV1 encoding of the manipulation masks (the swap writes them
beside the video). The stages write their frames into memory touched before the timing (`touched`):
a stage that keeps 309 frames in new memory also pays a page fault per 4 KiB, which the pipeline,
reusing its buffers, does not, and which one run of a stage paid and the next did not. Then the ceiling those costs imply for the cores
available: cores x 1000 / (sum of the stages' CPU ms), and the slowest serial stage's own limit
(decode and encode run in one process each; face finding spreads over the workers). Then `dfjax
swap` end to end for each `--workers` count (0: the swap's default, every core but one), each in a new
process that starts as cold as the CLI (report.in_fresh_process), as frames per second and as a
fraction of the ceiling, over the whole call to `swap()` (model loading, compiling and the first
faces included; the interpreter's start and imports, about 1 s, not, and, as in the CLI, the face
workers' server starts before those imports and gets ready during them), over the whole `dfjax swap`
command (`command_*`: a new `python -m dfjax.cli swap`, its start and imports included), and (`--marginal`) at the steady
rate: a swap of the video played forwards then backwards minus a swap of it played once, which
takes out loading, compiling, the workers' start and the pipeline's filling and draining (the face
workers run up to 2 x workers + 1 stretches of 48 frames ahead). The marginal line also has the CPU
milliseconds per frame of every process of the swap together (main process and face workers),
which a loaded machine changes less than wall time: near the stages' sum, little is lost outside
them. Before those, what handing a
frame to a face worker costs the sender, through a pipe (as before) and through shared memory.
With `--repeats N` the stages and then the end-to-end runs are measured N times in turn (every line
carries its `repeat`), each end-to-end figure a fraction of the ceiling measured just before it, and
a `summary` line per workers count gives the medians: this machine's speed drifts by 5-10% within
minutes, and one measurement of each side can land on either side of such a drift.
With `--before FILE`, each stage's, the ceiling's and each workers count's figure beside an
earlier run's (medians over the repeats). After the first repeat's stages, one line per x264 `--presets`
entry: the swapped frames encoded at the swap's CRF with that preset, its CPU milliseconds per frame,
file size and PSNR against the swapped frames themselves (what a `--lossless` swap stores). The stages'
frames (about 2 GB) are let go before the end-to-end runs: on this virtual machine a fresh process's
memory costs up to 2.5 s per GiB at first touch while another process holds a few GB, and the swap
being timed should not pay for the benchmark's own memory.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from report import (Reporter, Stages, available_cores, cpu_timed, in_fresh_process, run_command,  # noqa: E402
                    throwaway_model)

from dfjax import media  # noqa: E402
from dfjax.faces.pipeline import ExtractOptions  # noqa: E402
from dfjax.training.core import load_trained  # noqa: E402
from dfjax.swap import SwapOptions, Swapper, crop_settings, swap  # noqa: E402

DEFAULT_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "ffpp_004.mp4"


def find_faces_in_process(frames, video: Path, info, finder: ExtractOptions, full_meta: bool = True) -> list:
    """The swap's face finding in this process (so its CPU time is measurable), as one worker runs it:
    the units of the decoded `frames`, read where they lie (a worker reads them in its ring slot)."""
    from dfjax.faces import pipeline

    pipeline._init_worker(finder, None, full_meta)
    return [pipeline._run_unit(("video", (str(video), start, unit, warmup, float(info.fps), link)))
            for start, unit, warmup, link in pipeline.stretches(frames)]


def timed_faces(frames, video: Path, info, finder: ExtractOptions, full_meta: bool) -> tuple[list, float, float]:
    """(units, wall s, CPU s) of find_faces_in_process."""
    return cpu_timed(lambda: find_faces_in_process(frames, video, info, finder, full_meta))


def handoff(frames: list, via: str, depth: int = 2) -> tuple[float, float]:
    """(wall, CPU seconds of this process) to hand a video's already decoded frames, in the face
    workers' stretches (warm-up frames included), to one worker process and have each unit back:
    `via` "pipe" pickles the frames into the task, as before; "shared memory" copies them into a
    FrameRing slot and sends its SlotRef, as `video_faces` does now. The worker does nothing with them
    (`len` of the task), so this is the hand-off alone, as the sender pays it."""
    import multiprocessing as mp
    from collections import deque

    from dfjax.faces import pipeline

    units = [unit for _, unit, _, _ in pipeline.stretches(frames)]
    with mp.get_context("forkserver").Pool(1) as pool:
        pool.apply(len, ((),))  # started before the timing
        ring = pipeline.FrameRing(depth + 1, frames[0].nbytes) if via == "shared memory" else None
        try:
            def run():
                pending: deque = deque()
                for stretch in units:
                    payload = ring.put(stretch) if ring else stretch
                    pending.append((payload, pool.apply_async(len, (("video", ("v", 0, payload, 0, 25.0)),))))
                    while len(pending) >= depth or (pending and stretch is units[-1]):
                        payload, future = pending.popleft()
                        future.get()
                        if ring:
                            ring.release(payload)

            _, wall, cpu = cpu_timed(run)
        finally:
            if ring:
                ring.close()
    return wall, cpu


def psnr(reference: list, frames) -> float:
    """PSNR in dB over all pixels and channels of `frames` against `reference` (RGB uint8)."""
    squared, count = 0.0, 0
    for ref, frame in zip(reference, frames, strict=True):
        diff = ref.astype(np.int32) - frame
        squared += float((diff * diff).sum(dtype=np.int64))
        count += diff.size
    return 10 * np.log10(255.0 ** 2 / max(squared / count, 1e-12))


class TreeCpu:
    """CPU seconds (user + system) of this process and its descendants (the face workers' server and
    the workers), those that ended since an earlier `sample` included: the face workers exit once the
    last stretch is handed out, before the swap's last frames, so each process keeps its last value."""

    def __init__(self):
        self._seen: dict[int, float] = {}

    def sample(self) -> float:
        tick = os.sysconf("SC_CLK_TCK")
        parents, cpu = {}, {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                parents[int(entry)] = int(fields[1])
                cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
        tree, grew = {os.getpid()}, True
        while grew:
            found = {pid for pid, parent in parents.items() if parent in tree} - tree
            tree |= found
            grew = bool(found)
        self._seen.update({pid: cpu[pid] for pid in tree if pid in cpu})
        return sum(self._seen.values())


class Progress:
    """A progress object for `swap` that keeps the wall time and the CPU seconds of every process of the
    swap (this one, the face workers) at the last frame, sampling the processes every `every` frames."""

    def __init__(self, cpu: TreeCpu, every: int = 8):
        self.cpu, self.every = cpu, every
        self.total, self.frames, self.last = 0, 0, None

    def add_task(self, *args, total: int = 0, **kwargs) -> int:
        self.total = total
        return 0

    def advance(self, task: int, amount: int = 1) -> None:
        self.frames += amount
        if self.frames >= self.total:
            self.last = (time.perf_counter(), self.cpu.sample())
        elif self.frames % self.every == 0:
            self.cpu.sample()


def timed_swap(video: Path, out: Path, model_dir: Path, options: SwapOptions) -> tuple[dict, float, float, float]:
    """(summary, wall seconds to the return, and to the last frame, CPU seconds of every process to the
    last frame) of one swap, from the call."""
    cpu = TreeCpu()
    progress = Progress(cpu)
    t0, c0 = time.perf_counter(), cpu.sample()
    summary = swap(video, out, model_dir, options, progress=progress)
    seconds = time.perf_counter() - t0
    t1, c1 = progress.last
    return summary, seconds, t1 - t0, c1 - c0


def timed_swaps(model_dir: str, options: dict, jobs: list[list[str]]) -> list:
    """timed_swap of each [video, output] in turn (called by `in_fresh_process`, with JSON arguments)."""
    return [timed_swap(Path(video), Path(out), Path(model_dir), SwapOptions(**options)) for video, out in jobs]


def timed_command(video: Path, output: Path, model_dir: Path, options: SwapOptions) -> float:
    """Wall seconds of the whole `dfjax swap` command (`python -m dfjax.cli`) in a new process: the
    interpreter's start and every import included, as a user waits for it."""
    command = [sys.executable, "-m", "dfjax.cli", "swap", str(video), "-o", str(output), "--model", str(model_dir),
               "--workers", str(options.workers), "--preset", options.preset,
               "--encode-threads", str(options.encode_threads), "--overwrite", "--quiet"]
    start = time.perf_counter()
    run_command(command, f"`{' '.join(command)}`", cwd=Path(__file__).resolve().parents[1])
    return time.perf_counter() - start


def doubled_clips(video: Path, folder: Path) -> tuple[Path, Path]:
    """The video re-encoded as it is (x1) and followed by itself backwards (x2), the same way, so that
    a swap of x2 minus one of x1 is the cost of 309 more frames with loading, compiling, worker start
    and the pipeline's filling and draining taken out."""
    info = media.probe(video)
    frames = [frame for _, frame in media.iter_frames(video)]
    clips = []
    for name, sequence in (("x1.mp4", frames), ("x2.mp4", frames + frames[::-1])):
        with media.VideoWriter(folder / name, info.fps, info.width, info.height, crf=16, preset="veryfast") as writer:
            for frame in sequence:
                writer.write(frame)
        clips.append(folder / name)
    return clips[0], clips[1]


def compare_with(emit: Reporter, before: Path) -> None:
    """Lines of this run's stages, ceiling and end-to-end figures beside those of an earlier run (medians
    over the repeats of a run that has several): CPU ms per frame of each stage, the ceiling, and per
    workers count [whole call s, its fraction of the ceiling]."""
    import json

    def index(lines: list[dict]) -> dict:
        values: dict = {}
        for line in lines:
            if "stage" in line:
                values.setdefault(("stage", line["stage"]), []).append(line["cpu_ms_per_frame"])
            elif line.get("case") == "ceiling":
                values.setdefault(("ceiling", "frames_per_s"), []).append(line["ceiling_frames_per_s"])
            elif line.get("case") == "end_to_end":
                workers = line.get("workers_option", line.get("workers"))
                values.setdefault(("end_to_end", workers), []).append((line["seconds"], line["fraction_of_ceiling"]))
        return {key: [round(statistics.median(v), 2) for v in zip(*found)] if isinstance(found[0], tuple)
                else round(statistics.median(found), 2) for key, found in values.items()}

    old = index([json.loads(line) for line in before.read_text().splitlines() if line.strip()])
    new = index([json.loads(line) for line in emit.lines])
    for key in sorted(set(old) | set(new), key=str):
        kind, name = key
        emit({"benchmark": "swap", "case": "before_after", "what": kind, "name": name, "before_file": before.name,
              "before": old.get(key), "after": new.get(key)})


def touched(shape: tuple[int, ...]) -> np.ndarray:
    """A uint8 array whose pages are already mapped. A stage that keeps its 309 frames in new memory pays
    a page fault per 4 KiB the first time (1-1.5 CPU ms per 720p frame here), and whether its memory is
    new depends on what the process freed before; the pipeline reuses its buffers. So the stages write
    into these, and each stage's cost is its own, the same in every repeat."""
    return np.ones(shape, np.uint8)


def timed_decode(video: Path, info) -> tuple[np.ndarray, float, float]:
    """(frames, wall s, CPU s) of decoding `video` into memory already touched, as the pipeline decodes
    into its ring's slots."""
    frames = touched((info.frames, info.height, info.width, 3))

    def decode():
        for index, frame in media.iter_frames(video):
            frames[index] = frame

    _, wall, cpu = cpu_timed(decode)
    return frames, wall, cpu


def measure_stages(emit: Reporter, args, video: Path, info, model, swapper: Swapper, tmp: Path, repeat: int):
    """Every stage of the swap measured alone, then the ceiling they imply: (ceiling frames/s, the
    composited frames, an `encode(preset, name)` of them). The first repeat also measures the hand-off
    and the face stage as extract runs it."""
    n, cores = info.frames, available_cores()
    stage = Stages(emit, "swap", n, cores, repeat=repeat)
    frames, wall, cpu = timed_decode(video, info)
    stage("decode", wall, cpu)

    if repeat == 0:
        for via in ("pipe", "shared memory"):  # what moving a frame to a face worker costs, before and after
            wall, cpu = handoff(frames, via)
            emit({"benchmark": "swap", "case": "handoff", "via": via, "cpu_ms_per_frame": round(1e3 * cpu / n, 2),
                  "ms_per_frame": round(1e3 * wall / n, 2), "note": "sender's CPU; not in the ceiling's stages"})

    face_type, coverage = crop_settings(model)
    finder = ExtractOptions(size=model.resolution, face_type=face_type, coverage=coverage)
    full_meta = swapper.driver is not None  # as swap_video asks the workers: pose, gaze, blinks only when used
    compare = {}  # the face stage as extract runs it (256 px crops, full metadata) and with this crop size
    for name, options, full in (("extract_256px_full_meta", ExtractOptions(), True),
                                (f"swap_{model.resolution}px_full_meta", finder, True)):
        if repeat == 0 and (full != full_meta or name.startswith("extract")):
            _, _, cpu = timed_faces(frames, video, info, options, full)
            compare[name] = round(1e3 * cpu / n, 2)
    units, wall, cpu = timed_faces(frames, video, info, finder, full_meta)
    stage("faces", wall, cpu, note="decoded frames", full_meta=full_meta,
          frames_with_face=sum(len(u.faces) for u in units),
          **{f"cpu_ms_per_frame_{k}": v for k, v in compare.items()})
    by_frame = {index: (crop, mask, meta) for unit in units for index, crop, mask, meta in unit.faces}
    found = [(i, frame, [by_frame[i]] if i in by_frame else []) for i, frame in enumerate(frames)]

    crops = [crop for _, _, faces in found for crop, _, _ in faces]
    swapper.generate(crops[:1])  # compile outside the timing
    swapper.generate(crops[:32])
    (generated, masks), wall, cpu = cpu_timed(lambda: swapper.generate(crops))
    stage("inference", wall, cpu, faces=len(crops))

    outputs, frame_masks = touched(frames.shape), touched(frames.shape[:3])

    def composite():  # as Swapper.frames does it: the frame and its manipulation mask
        k = 0
        for index, (_, frame, faces) in enumerate(found):
            out, frame_mask = frame, np.zeros(frame.shape[:2], np.uint8)
            for crop, _, meta in faces:
                out, face_mask = swapper.composite(out, crop, generated[k], masks[k], meta)
                frame_mask = np.maximum(frame_mask, face_mask)
                k += 1
            outputs[index], frame_masks[index] = out, frame_mask

    _, wall, cpu = cpu_timed(composite)
    stage("colour+mask+paste", wall, cpu)

    def encode(preset: str = args.preset, name: str = "enc.mp4") -> Path:
        path = tmp / name
        with media.VideoWriter(path, info.fps, info.width, info.height, crf=SwapOptions.crf, preset=preset,
                               threads=args.encode_threads) as writer:
            for out in outputs:
                writer.write(out)
        return path

    _, wall, cpu = cpu_timed(encode)
    stage("encode", wall, cpu, preset=args.preset, threads=args.encode_threads)

    def encode_masks():
        with media.VideoWriter(tmp / "masks.mkv", info.fps, info.width, info.height, gray=True) as writer:
            for mask in frame_masks:
                writer.write(mask)

    _, wall, cpu = cpu_timed(encode_masks)
    stage("mask encode", wall, cpu, codec="ffv1")
    ceiling = stage.ceiling({"decode": ("decode",), "encode": ("encode", "mask encode")})
    return ceiling, outputs, encode


def compare_presets(emit: Reporter, args, info, outputs: np.ndarray, encode) -> None:
    """One line per `--presets` entry: the swapped frames encoded with it, CPU, size and PSNR."""
    n = info.frames
    for preset in filter(None, args.presets.split(",")):
        path, wall, cpu = cpu_timed(functools.partial(encode, preset, f"preset_{preset}.mp4"))
        emit({"benchmark": "swap", "case": "preset", "preset": preset, "crf": SwapOptions.crf,
              "threads": args.encode_threads, "cpu_ms_per_frame": round(1e3 * cpu / n, 2),
              "ms_per_frame": round(1e3 * wall / n, 2), "bytes": path.stat().st_size,
              "kbit_per_s": round(8e-3 * path.stat().st_size / (n / float(info.fps)), 1),
              "psnr_db": round(psnr(outputs, (frame for _, frame in media.iter_frames(path))), 2)})


def end_to_end(args, video: Path, model_dir: Path, workers: int, ceiling: float, n: int, tmp: Path,
               doubled: tuple[Path, Path] | None, repeat: int) -> dict:
    """The line of one end-to-end swap with `workers` face workers, as a fraction of `ceiling`: the whole
    call in a fresh process, the whole command, and (with `doubled`) the steady rate."""
    options = SwapOptions(workers=workers, preset=args.preset, encode_threads=args.encode_threads)
    name = f"{workers}_{repeat}"
    jobs = [(video, tmp / f"end_to_end_{name}.mp4")]
    if doubled:
        jobs += [(doubled[0], tmp / f"x1_{name}.mp4"), (doubled[1], tmp / f"x2_{name}.mp4")]
    (summary, seconds, _, _), *rest = in_fresh_process(
        __file__, "timed_swaps", str(model_dir), asdict(options), [[str(v), str(o)] for v, o in jobs],
        face_workers_first=True)
    command = timed_command(video, tmp / f"command_{name}.mp4", model_dir, options)
    marginal = {}
    if doubled:
        (_, _, wall1, cpu1), (_, _, wall2, cpu2) = rest
        marginal = {"marginal_frames_per_s": round(n / (wall2 - wall1), 1),
                    "marginal_fraction_of_ceiling": round(n / (wall2 - wall1) / ceiling, 2),
                    "marginal_cpu_ms_per_frame_all_processes": round(1e3 * (cpu2 - cpu1) / n, 2),
                    "marginal_cores_busy": round((cpu2 - cpu1) / (wall2 - wall1), 2)}
    pipeline_fps = summary["frames_per_second"]  # swap_video's timer: the workers' start to the last frame
    face_workers = workers or max(1, (os.cpu_count() or 2) - 1)  # as dfjax.swap.swap_video chooses
    return {"benchmark": "swap", "repeat": repeat, "case": "end_to_end", "workers_option": workers,
            "face_workers": face_workers, "seconds": round(seconds, 2),
            "frames_per_s": round(n / seconds, 1), "fraction_of_ceiling": round(n / seconds / ceiling, 2),
            "pipeline_frames_per_s": pipeline_fps,
            "pipeline_fraction_of_ceiling": round(pipeline_fps / ceiling, 2),
            "command_seconds": round(command, 2), "command_frames_per_s": round(n / command, 1),
            "command_fraction_of_ceiling": round(n / command / ceiling, 2),
            "frames_swapped": summary["frames_swapped"], **marginal}


def summary_line(workers: int, ceilings: list[float], runs: list[dict]) -> dict:
    """The median over the repeats of one workers count: each repeat's end-to-end figure is a fraction of
    the ceiling measured just before it, so a machine that drifts between repeats moves both."""
    def median(key: str) -> float:
        return round(statistics.median(run[key] for run in runs), 2)

    return {"benchmark": "swap", "case": "summary", "workers_option": workers, "repeats": len(runs),
            "ceiling_frames_per_s_median": round(statistics.median(ceilings), 1),
            "seconds_median": median("seconds"), "fraction_of_ceiling_median": median("fraction_of_ceiling"),
            "fraction_of_ceiling_each": [run["fraction_of_ceiling"] for run in runs],
            "command_fraction_of_ceiling_median": median("command_fraction_of_ceiling"),
            "pipeline_fraction_of_ceiling_median": median("pipeline_fraction_of_ceiling")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", default=str(DEFAULT_VIDEO))
    parser.add_argument("--model", default=None)
    parser.add_argument("--workers", default="0", help="comma-separated worker counts for the end-to-end runs")
    parser.add_argument("--repeats", type=int, default=1,
                        help="measure the stages and then the end-to-end runs this many times in turn; a "
                             "summary line per workers count gives the median fraction of the ceiling")
    parser.add_argument("--preset", default=SwapOptions.preset, choices=media.X264_PRESETS,
                        help="x264 preset of the encode stage and the end-to-end runs")
    parser.add_argument("--encode-threads", type=int, default=SwapOptions.encode_threads,
                        help="x264 threads of the encode stage and the end-to-end runs (0: x264 chooses)")
    parser.add_argument("--presets", default="medium,veryfast,ultrafast",
                        help="comma-separated x264 presets to compare (CPU, size, PSNR); empty: none")
    parser.add_argument("--marginal", action=argparse.BooleanOptionalAction, default=True,
                        help="also swap the video re-encoded (x1) and followed by itself backwards (x2): their "
                             "difference is the steady rate, without start-up, filling and draining")
    parser.add_argument("--before", default=None,
                        help="an earlier run's JSON lines: one more line per stage and per workers count with "
                             "its figure beside this run's")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    emit = Reporter()
    video = Path(args.video)
    if not video.exists():
        emit({"benchmark": "swap", "skipped": f"{video} not found"})
        return
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: give 1 or more")
    model_dir = Path(args.model) if args.model else throwaway_model("configs/swap.py:tiny")
    model = load_trained(model_dir)
    info = media.probe(video)
    n = info.frames
    emit({"benchmark": "swap", "case": "header", "date": date.today().isoformat(), "video": video.name,
          "width": info.width, "height": info.height, "frames": n, "model": model.config.model.arch,
          "resolution": model.resolution, "cpu_count": os.cpu_count(), "cores": available_cores(),
          "repeats": args.repeats})
    swapper = Swapper(model, SwapOptions())
    worker_counts = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        doubled = doubled_clips(video, tmp) if args.marginal else None
        ceilings, runs = [], {workers: [] for workers in worker_counts}
        for repeat in range(args.repeats):
            ceiling, outputs, encode = measure_stages(emit, args, video, info, model, swapper, tmp, repeat)
            ceilings.append(ceiling)
            if repeat == 0:
                compare_presets(emit, args, info, outputs, encode)
            del outputs, encode  # 1.1 GB of frames: the swaps below run without this process holding them
            for workers in worker_counts:
                runs[workers].append(end_to_end(args, video, model_dir, workers, ceiling, n, tmp, doubled, repeat))
                emit(runs[workers][-1])
        if args.repeats > 1:
            for workers in worker_counts:
                emit(summary_line(workers, ceilings, runs[workers]))
    if args.before:
        compare_with(emit, Path(args.before))
    if args.out:
        emit.save(args.out)


if __name__ == "__main__":
    main()
