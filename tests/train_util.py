"""Helpers shared by the trainer's tests."""


class Interrupt:
    """A callback that raises KeyboardInterrupt after the optimizer step of step ``at``."""

    def __init__(self, at):
        self.at = at

    def __call__(self, trainer):
        if trainer.step == self.at:
            raise KeyboardInterrupt
