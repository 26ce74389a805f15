"""A Lightning callback that lets a training stage share a busy machine fairly (models.machine.ThreadGovernor)."""
from __future__ import annotations

from lightning.pytorch.callbacks import Callback

from models.machine import ThreadGovernor


class ShareCores(Callback):
    def __init__(self):
        self.governor = ThreadGovernor()

    def setup(self, trainer, pl_module, stage):
        if trainer.world_size == 1:  # DDP ranks share the cores: Lightning gives each its part
            self.governor.start()
        else:
            self.governor.enabled = False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.governor.step()

    def teardown(self, trainer, pl_module, stage):
        self.governor.stop()
