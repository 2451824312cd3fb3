"""Analysis of one trained model: confusion, saliency, filters, activations and learning curves.

Each figure is computed by a ``_get_*_info`` function that returns plain arrays (tested
without matplotlib) and drawn by a ``_plot_*`` function. :func:`analyze` runs them all
for the chosen model and fold.
"""

from fer_kaggle.analysis.analyze import FIGURE_FILES, AnalysisResult, analyze
from fer_kaggle.analysis.select import ModelScore, Selection, load_selected_model, score_models, select_model

__all__ = [
    "FIGURE_FILES",
    "AnalysisResult",
    "ModelScore",
    "Selection",
    "analyze",
    "load_selected_model",
    "score_models",
    "select_model",
]
