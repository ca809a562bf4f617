"""atnas: across-task neural architecture search (AT-NAS, arXiv 2110.05842).

A weight-sharing supernet meta-learned over a distribution of few-shot tasks, an evolutionary
search over architecture encodes, and fast per-task search + adaptation. Torch and numpy only.
"""

from atnas.data import ImageConfig, ImageSet, TaskData, load_images, load_task
from atnas.errors import (
    AtnasError,
    Cancelled,
    CheckpointError,
    ConfigError,
    DatasetError,
    EncodeError,
)
from atnas.metatrain import MetaState, MetaTrainConfig, MetaTrainer
from atnas.search import SearchConfig, SearchResult, search
from atnas.space import CONV4, Encode, LayerChoice, SearchSpace
from atnas.supernet import Supernet

__all__ = [
    "CONV4",
    "AtnasError",
    "Cancelled",
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "Encode",
    "EncodeError",
    "ImageConfig",
    "ImageSet",
    "LayerChoice",
    "MetaState",
    "MetaTrainConfig",
    "MetaTrainer",
    "SearchConfig",
    "SearchResult",
    "SearchSpace",
    "Supernet",
    "TaskData",
    "load_images",
    "load_task",
    "search",
]
__version__ = "0.1.0"
