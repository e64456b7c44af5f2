"""Hidden checks for assignment 2 (a fully connected classifier): the shared classifier checks."""

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
]
