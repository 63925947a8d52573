"""Green accounting: energy and CO2 of training and inference.

`tracker` (EnergyTracker), `budget` (EnergyBudget), `early_stopping`
(GreenEarlyStopping), `to_target` (EnergyToTarget) hold Keras callbacks that
work in `model.fit` of both Kerases; `inference` measures joules per
inference of a Keras model or a `.tflite` file on the latency loop. These
figures come from CodeCarbon's offline tracker: without hardware energy
counters (RAPL) they are estimates from CPU TDP and load of this host, and
say so. `estimate` (`tfgreen.estimate_energy`) is a different thing: a model
estimate for the target device class from the graph's MACs and bytes; the
two kinds of figure are never mixed.
"""

__all__: list[str] = []
