"""The training layer: one Trainer for pretraining and fine-tuning, its options, schedules,
checkpoints and metrics sinks, GPT-1's fine-tuning heads and objective, and the weight surgery
between the two."""

from .checkpoint import load_model, log_spaced_steps
from .checkpointer import Checkpointer
from .config import BatchPlan, TrainConfig, plan_batches
from .finetuning import TaskBatches, TaskModel, accuracy, finetune, task_loss
from .language_model import TokenEvaluator, TokenSampler, open_token_file, train_language_model
from .metrics import MetricsLog, TrainingDiverged
from .schedules import SCHEDULES, Schedule
from .sinks import MetricsSink, MissingExtra, TensorBoardSink
from .surgery import extend_vocabulary, transfer
from .trainer import BatchSource, Trainer, build_optimizer, flops_per_token, lm_loss, param_groups

__all__ = [
    "SCHEDULES",
    "BatchPlan",
    "BatchSource",
    "Checkpointer",
    "MetricsLog",
    "MetricsSink",
    "MissingExtra",
    "Schedule",
    "TaskBatches",
    "TaskModel",
    "TensorBoardSink",
    "TokenEvaluator",
    "TokenSampler",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "accuracy",
    "build_optimizer",
    "extend_vocabulary",
    "finetune",
    "flops_per_token",
    "lm_loss",
    "load_model",
    "log_spaced_steps",
    "open_token_file",
    "param_groups",
    "plan_batches",
    "task_loss",
    "train_language_model",
    "transfer",
]
