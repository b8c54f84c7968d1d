"""The one training core: a typed train state, one builder of the jitted, sharded, donated step, one
loop, orbax checkpoints and one restore path, shared by every trainer kind and the CNN detectors.

    parallel.py    the ("data",) mesh over every device of every process, shardings, multi-host join
    state.py       TrainState, optimizers
    step.py        make_step / jit_step: generator update, optional discriminator, EMA, skip-if-non-finite
    loop.py        run_loop: metrics, hooks (previews, validation), checkpoints, signals, NaN guard
    checkpoint.py  orbax keep-last-N checkpoints restored into their shardings
    trainer.py     the Trainer base class and the TRAINERS registry
    core.py        train(config, workdir) and load_trained(workdir, kind)
    swap.py, reenact.py   the trainer kinds (a new kind is one module here plus its config)
"""
