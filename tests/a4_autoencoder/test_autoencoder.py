"""Hidden checks for assignment 4 (a convolutional autoencoder): the shared reconstruction checks, and the
task-free shared checks (layer rule, parameter limit, optimizer)."""

from grader.classifier_checks import (
    test_make_optimizer_updates_every_parameter,
    test_only_allowed_layers,
    test_parameter_count_within_limit,
    test_uses_convolution,
)
from grader.reconstruction_checks import (
    test_bottleneck_is_smaller_than_the_input,
    test_output_restores_the_input_shape,
    test_train_one_epoch_lowers_the_reconstruction_loss,
    test_train_one_epoch_returns_mean_reconstruction_loss,
    test_train_one_epoch_zeroes_reconstruction_gradients,
)

__all__ = [
    "test_bottleneck_is_smaller_than_the_input",
    "test_make_optimizer_updates_every_parameter",
    "test_only_allowed_layers",
    "test_output_restores_the_input_shape",
    "test_parameter_count_within_limit",
    "test_train_one_epoch_lowers_the_reconstruction_loss",
    "test_train_one_epoch_returns_mean_reconstruction_loss",
    "test_train_one_epoch_zeroes_reconstruction_gradients",
    "test_uses_convolution",
]
