"""Green accounting: energy and CO2 of training and inference.

`tracker` (EnergyTracker), `budget` (EnergyBudget), `early_stopping`
(GreenEarlyStopping) hold Keras callbacks that work in `model.fit` of both
Kerases; `inference` measures joules per inference of a Keras model or a
`.tflite` file. Figures come from CodeCarbon's offline tracker: without
hardware energy counters (RAPL) they are estimates from CPU TDP and load,
and say so.
"""

__all__: list[str] = []
