"""Hidden checks for assignment 5 (a ten-class convolutional classifier): the shared classifier checks, with one
logit per class of [data], and a convolution."""

from grader.classifier_checks import (
    test_evaluate_computes_accuracy,
    test_evaluate_moves_batches_to_the_device,
    test_evaluate_uses_eval_mode_without_gradients,
    test_make_optimizer_updates_every_parameter,
    test_only_allowed_layers,
    test_output_is_logits_one_row_per_image_and_class,
    test_parameter_count_within_limit,
    test_train_one_epoch_lowers_the_loss,
    test_train_one_epoch_moves_batches_to_the_device,
    test_train_one_epoch_returns_mean_loss,
    test_train_one_epoch_trains_in_training_mode,
    test_train_one_epoch_zeroes_gradients,
    test_uses_convolution,
)

__all__ = [
    "test_evaluate_computes_accuracy",
    "test_evaluate_moves_batches_to_the_device",
    "test_evaluate_uses_eval_mode_without_gradients",
    "test_make_optimizer_updates_every_parameter",
    "test_only_allowed_layers",
    "test_output_is_logits_one_row_per_image_and_class",
    "test_parameter_count_within_limit",
    "test_train_one_epoch_lowers_the_loss",
    "test_train_one_epoch_moves_batches_to_the_device",
    "test_train_one_epoch_returns_mean_loss",
    "test_train_one_epoch_trains_in_training_mode",
    "test_train_one_epoch_zeroes_gradients",
    "test_uses_convolution",
]
