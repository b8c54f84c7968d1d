"""Training-step throughput of the reference networks, one JSON line per case.

Two kinds of data:
- random: the step of the protocol exactly (and of the PyTorch peer it is timed beside): encode A and B,
  decode each with its decoder, L1(face) + MSE(mask) on both sides, one Adam update (lr 5e-5, betas
  0.5/0.99), bf16 compute with float32 parameters, on random arrays already on the device;
- real: dfjax's own step (dfjax.training.step with the swap trainer): both face sets on the device as uint8, batches sampled by index and
  augmented (random warp, affine, L*a*b* colour, flip) inside the jitted step, same losses.
The gap between the two is the input pipeline's cost.

  python benchmarks/train.py                               # every case, both kinds (GPU)
  python benchmarks/train.py --cases small,mid --data random --steps 50
  python benchmarks/train.py --cases tiny --steps 5 --warmup 2   # CPU smoke run
  python benchmarks/train.py --faceset facesets/presenters     # real data from an extracted face set
  python benchmarks/train.py --cases tiny --data real --identities 2,3,4,6   # how the step grows with N

Reports per case: step_ms (median), images_per_s (identities x batch per side / step), gflop_per_step
and tflops (XLA cost analysis of the compiled step), compile_s, peak memory (GPU), params_m and
state_mb (parameters, EMA and optimizer state) and the devices. `--identities` times the real step of
models with N identities (one decoder each, every step sampling every identity).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from functools import partial
from pathlib import Path

import jax
import numpy as np
import optax

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from report import Reporter  # noqa: E402

from dfjax import losses  # noqa: E402
from dfjax.training import parallel  # noqa: E402
from dfjax.config import apply_overrides, load_config  # noqa: E402
from dfjax.data.training_set import load_side  # noqa: E402
from dfjax.training.core import initial_state  # noqa: E402
from dfjax.training.state import build_optimizer  # noqa: E402
from dfjax.training.step import make_step  # noqa: E402
from dfjax.training.swap import SideData, SwapData, SwapTrainer  # noqa: E402

CASES = {"small": ("original", 64), "small-wide": ("original", 256), "mid": ("sae128", 32),
         "mid-wide": ("sae128", 128), "large": ("sae256", 16), "large-wide": ("sae256", 64), "tiny": ("tiny", 16)}


def case_config(arch: str, batch: int, dtype: str, identities: int = 2):
    config = load_config(f"configs/swap.py:{arch}")
    return apply_overrides(config, [f"train.batch_per_side={batch}", f"model.dtype='{dtype}'", "train.lr=5e-5",
                                    f"data.synth_identities={identities}",
                                    "train.grad_clip=0.0", "loss.ssim=0.0", "loss.l1=1.0", "loss.mask=1.0",
                                    "data.eye_weight=1.0", "data.mouth_weight=1.0", "train.ema_decay=0.0"])


def random_step(generator, optimizer):
    """The protocol's step: L1(face) + MSE(mask) on both sides, one Adam update."""

    def step(params, opt_state, data):
        def loss_fn(p):
            out = generator.apply({"params": p}, data["x_a"], data["x_b"])
            return sum(losses.l1(out[f"face_{s}"], data[f"t_{s}"]) + losses.mse(out[f"mask_{s}"], data[f"m_{s}"])
                       for s in "ab")

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def timed(compiled, args, steps: int, warmup: int, state_slots: int):
    """Median step time; the first `state_slots` outputs are fed back as the next inputs."""
    args = list(args)
    for _ in range(warmup):
        out = compiled(*args)
        args[:state_slots] = out[:state_slots]
    jax.block_until_ready(out)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        out = compiled(*args)
        jax.block_until_ready(out)
        times.append(time.perf_counter() - t0)
        args[:state_slots] = out[:state_slots]
    return statistics.median(times), out


def flops_of(fn, args) -> float | None:
    """FLOPs of one step, from XLA's cost analysis of the step lowered for CPU.

    Counted before GPU compilation on purpose: the compiled GPU module's count misses convolutions that
    became cuDNN custom calls (it reported 11.5 GFLOP for a 1,878 GFLOP step on an H100), and a lowered
    GPU module has no cost analysis at all.
    """
    shapes = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), args)
    try:
        cost = fn.trace(*shapes).lower(lowering_platforms=("cpu",)).cost_analysis()
    except Exception:  # noqa: BLE001 - a step bound to device shardings cannot be lowered for CPU
        cost = fn.lower(*args).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", 0.0)) if cost else None


def peak_memory_gb() -> float | None:
    stats = jax.local_devices()[0].memory_stats()
    return round(stats["peak_bytes_in_use"] / 2**30, 2) if stats and "peak_bytes_in_use" in stats else None


def bench_case(name: str, kind: str, args, mesh, faceset: str | None, identities: int = 2) -> dict:
    arch, batch = CASES[name]
    batch = args.batch or batch
    config = case_config(arch, batch, args.dtype, identities)
    trainer = SwapTrainer(config)
    res, generator = trainer.res, trainer.generator
    optimizer = build_optimizer(config.train, config.train.lr)
    rep, shard = parallel.replicated(mesh), parallel.batch_sharded(mesh)
    init = partial(initial_state, trainer)
    state = jax.jit(init, out_shardings=jax.tree.map(lambda _: rep, jax.eval_shape(init)))()
    t0 = time.perf_counter()
    if kind == "random":
        rng = np.random.default_rng(0)
        data = {k: parallel.put_batch(rng.random((batch, res, res, c), np.float32), mesh)
                for k, c in (("x_a", 3), ("x_b", 3), ("t_a", 3), ("t_b", 3), ("m_a", 1), ("m_b", 1))}
        fn = jax.jit(random_step(generator, optimizer), donate_argnums=(0, 1))
        lowered = fn.lower(state.params, state.opt_state, data)
        call_args, slots = (state.params, state.opt_state, data), 2
    else:
        sides = real_sides(faceset, res, identities)
        trainer.batch_sharding = shard
        data = SwapData({name: SideData(parallel.put_replicated(side.faces, mesh), parallel.put_replicated(side.maps, mesh))
                         for name, side in zip(trainer.names, sides)})
        fn = jax.jit(make_step(trainer, optimizer, None, config.train.ema_decay), donate_argnums=0)
        lowered = fn.lower(state, data)
        call_args, slots = (state, data), 1
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0
    step_s, out = timed(compiled, call_args, args.steps, args.warmup, slots)
    flops = flops_of(fn, call_args)
    params = sum(x.size for x in jax.tree.leaves(state.params))
    state_mb = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves((state.params, state.ema, state.opt_state))) / 2**20
    return {"benchmark": "train", "case": name, "data": kind, "model": arch, "res": res, "batch_per_side": batch,
            "identities": identities, "state_mb": round(state_mb, 1),
            "dtype": args.dtype, "step_ms": round(step_s * 1e3, 3),
            "images_per_s": round(identities * batch / step_s, 1),
            "gflop_per_step": round(flops / 1e9, 1) if flops else None,
            "tflops": round(flops / step_s / 1e12, 2) if flops else None, "compile_s": round(compile_s, 1),
            "mem_gb": peak_memory_gb(), "params_m": round(params / 1e6, 1) if params else None,
            "devices": mesh.size, "device": jax.devices()[0].device_kind, "steps_timed": args.steps}


_real_cache: dict = {}


def real_sides(faceset: str | None, res: int, identities: int = 2) -> list:
    """Face sets at the model's resolution: the given one for every identity, or rendered synthetic ones."""
    if faceset:
        return [load_side("a", faceset)] * identities
    if (res, identities) not in _real_cache:
        from dfjax.data.synthetic import identity_names, synthesize

        names = identity_names(identities)
        out = Path(tempfile.mkdtemp()) / "synth"
        synthesize(out, frames=64, size=max(2 * res, 128), face_size=res, identities=names)
        _real_cache[res, identities] = [load_side(n, out / "facesets" / n) for n in names]
    return _real_cache[res, identities]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="small,small-wide,mid,mid-wide,large,large-wide")
    parser.add_argument("--data", default="random,real")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=0, help="override the batch per side of every case")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--faceset", default=None)
    parser.add_argument("--identities", default="2", help="comma-separated identity counts (real data only for N > 2)")
    parser.add_argument("--out", default=None, help="also write the JSON lines to this file")
    args = parser.parse_args()
    mesh = parallel.make_mesh()
    emit = Reporter()
    header = {"benchmark": "train", "case": "header", "date": date.today().isoformat(), "jax": jax.__version__,
              "backend": jax.default_backend(), "device": jax.devices()[0].device_kind, "devices": mesh.size,
              "python": platform.python_version()}
    emit(header)
    for case in args.cases.split(","):
        for kind in args.data.split(","):
            for n in (int(n) for n in args.identities.split(",")):
                if n == 2 or kind == "real":  # the protocol's random step is the two-identity one
                    emit(bench_case(case, kind, args, mesh, args.faceset, n))
    if args.out:
        emit.save(args.out)


if __name__ == "__main__":
    main()
