"""Model zoo for 48x48 grayscale faces, registered in timm's model registry.

Importing this package registers ``resnet_seed``, ``resnet_fast``, ``preact_resnet``,
``timm_resnet18_48``, ``timm_resnet18_48_w32`` and ``dnn``, so ``timm.create_model`` finds
them too.
:func:`create_model` also builds any other timm model with its input adapted to 48x48
grayscale.
"""

from fer_kaggle.models import dnn, preact_resnet, resnet_seed, timm_resnet
from fer_kaggle.models.dnn import DNN, build_dnn, dnn_parameter_count, solve_hidden_width
from fer_kaggle.models.factory import check_model_name, count_parameters, create_model, list_models
from fer_kaggle.models.preact_resnet import build_preact_resnet48
from fer_kaggle.models.stem import adapt_stem_for_small_input
from fer_kaggle.models.timm_resnet import build_resnet48

__all__ = [
    "DNN",
    "adapt_stem_for_small_input",
    "build_dnn",
    "build_preact_resnet48",
    "build_resnet48",
    "check_model_name",
    "count_parameters",
    "create_model",
    "dnn_parameter_count",
    "list_models",
    "solve_hidden_width",
]
