"""The seed's optimizer question: which of SGD, Adam, Adadelta reaches X% on digits for the least energy?

For each optimizer and learning rate of a small sweep, the same digits MLP
(64-256-256-10, the same initial weights) trains with
`tfgreen.callbacks.EnergyToTarget(monitor="val_accuracy", target=X,
stop=True)` until its validation accuracy first reaches the target, or the
epoch limit. A row gives the energy to the target (CodeCarbon's estimate on
this host in CodeCarbon's process mode, labelled), the epochs and the wall
time; the last row states the
answer: the optimizer and learning rate with the least energy to the target.

Run it alone with `python benchmarks/bench_energy_optimizers.py [--quick]`,
or through `benchmarks/run.py --only energy_optimizers`. The functions are
also what a notebook calls (`optimizer_energy`).
"""

from __future__ import annotations

import time

__all__ = ["SWEEP", "optimizer_energy", "run"]

# (optimizer, learning rates): each optimizer's usual default and one larger step.
SWEEP = (("sgd", (0.01, 0.1)), ("adam", (0.001, 0.003)), ("adadelta", (0.1, 1.0)))


def optimizer_energy(
    optimizer: str,
    learning_rate: float,
    target: float = 0.95,
    max_epochs: int = 100,
    flavor: str = "keras3",
    seed: int = 0,
) -> dict:
    """Trains the digits MLP with one optimizer until `val_accuracy` reaches `target`.

    Args:
        optimizer: `"sgd"`, `"adam"` or `"adadelta"` (any Keras optimizer name).
        learning_rate: Its learning rate.
        target: Validation accuracy to reach. Defaults to `0.95`.
        max_epochs: Epoch limit. Defaults to `100`.
        flavor: `"keras3"` or `"tf_keras"`. Defaults to `"keras3"`.
        seed: Seed of the initial weights. Defaults to `0`.

    Returns:
        A row: optimizer, learning_rate, target, reached, target_epoch
        (1-based), energy_to_target_kwh, co2_to_target_kg, epochs_run,
        seconds, energy_method.
    """
    from tfgreen.callbacks import EnergyToTarget, EnergyTracker
    from tfgreen.datasets import load_digits
    from tfgreen.flavor import keras_for
    from tfgreen.models import small_mlp

    keras = keras_for(flavor)
    (x, y), (x_val, y_val) = load_digits(flat=True)
    model = small_mlp(flavor, seed=seed)
    model.compile(
        keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": learning_rate}}),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    # process mode: only this run's CPU time counts, not other work on a shared machine
    tracker = EnergyTracker(tracking_mode="process")
    to_target = EnergyToTarget("val_accuracy", target=target, stop=True, tracker=tracker, verbose=0)
    start = time.perf_counter()
    model.fit(
        x,
        y,
        validation_data=(x_val, y_val),
        epochs=max_epochs,
        batch_size=32,
        verbose=0,
        callbacks=[tracker, to_target],
    )
    reached = to_target.target_epoch is not None
    return {
        "benchmark": "energy_to_target",
        "optimizer": optimizer,
        "learning_rate": learning_rate,
        "target": target,
        "reached": reached,
        "target_epoch": to_target.target_epoch + 1 if reached else None,
        "energy_to_target_kwh": to_target.energy_to_target_kwh,
        "co2_to_target_kg": to_target.co2_to_target_kg,
        "epochs_run": to_target.epochs_run,
        "seconds": time.perf_counter() - start,
        "energy_method": to_target.tracker.method,
    }


def run(quick: bool = False) -> list[dict]:
    """Runs the sweep; the last row names the optimizer with the least energy to the target.

    Args:
        quick: Target 0.9 within 20 epochs instead of 0.95 within 100.
            Defaults to `False`.

    Returns:
        One row per optimizer and learning rate, then the answer row.
    """
    target, max_epochs = (0.9, 20) if quick else (0.95, 100)
    rows = [
        optimizer_energy(name, rate, target=target, max_epochs=max_epochs)
        for name, rates in SWEEP
        for rate in rates
    ]
    reached = sorted((r for r in rows if r["reached"]), key=lambda r: r["energy_to_target_kwh"])
    if not reached:
        answer = f"no optimizer reached {target:.0%} within {max_epochs} epochs"
    else:
        best = reached[0]
        answer = (
            f"{best['optimizer']} (learning_rate={best['learning_rate']}) reaches "
            f"{target:.0%} val_accuracy for the least energy: "
            f"{best['energy_to_target_kwh']:.3g} kWh in {best['target_epoch']} epoch(s) "
            f"({best['energy_method']})"
        )
        if len(reached) > 1:  # one run each: a close second may be a tie
            second = reached[1]
            more = second["energy_to_target_kwh"] / best["energy_to_target_kwh"] - 1
            answer += (
                f"; next {second['optimizer']} (learning_rate={second['learning_rate']}) "
                f"+{more:.1%}"
            )
    rows.append({"benchmark": "energy_to_target", "answer": answer})
    return rows


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
