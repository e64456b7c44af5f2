"""Not hostile: sets torch and numpy options, seeds everything, silences warnings and imports plotting and
data libraries at import, as many honest submissions do; none of it may read as tampering."""

import random as _random
import warnings as _warnings

import matplotlib as _matplotlib

_matplotlib.use("Agg")
import matplotlib.pyplot as _plt  # noqa: E402
import numpy as _np  # noqa: E402
import pandas as _pd  # noqa: E402

torch.manual_seed(0)
_np.random.seed(0)
_random.seed(0)
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
torch.backends.cudnn.benchmark = False
torch.set_default_dtype(torch.float32)
torch.set_printoptions(precision=3)
torch.set_float32_matmul_precision("high")
torch.autograd.set_detect_anomaly(False)
_np.set_printoptions(precision=3)
_warnings.filterwarnings("ignore")
_history = _pd.DataFrame(columns=["epoch", "loss"])
_figure = _plt.figure()
