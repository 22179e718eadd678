"""Fine-tune on your own data with one YAML file: the course's pieces behind one command.

    python -m ftlib.finetune my.yaml            check, train, evaluate, export; print the serve command
    python -m ftlib.finetune my.yaml --check    only check the config and the data
    python -m ftlib.finetune my.yaml --resume   continue an interrupted run from its last checkpoint
    python -m ftlib.finetune --schema           the config's JSON Schema (for editors)

In Python: ``finetune("my.yaml")`` returns a :class:`~ftlib.finetune.run.RunResult`.
Modules, in the order a run uses them: :mod:`.config` (the YAML, pydantic), :mod:`.rows` (every data
row checked), :mod:`.prepare` (model, template, data), :mod:`.train` (TRL), :mod:`.evaluate`
(before/after), :mod:`.run` (the whole run, export and report).
"""
from ftlib.finetune.config import ConfigError, FinetuneConfig, load_config, parse, schema
from ftlib.finetune.rows import DataError
from ftlib.finetune.run import RunResult, check, finetune

__all__ = ["ConfigError", "DataError", "FinetuneConfig", "RunResult", "check", "finetune", "load_config", "parse", "schema"]
