"""Heavy: train_one_epoch first writes a 4 GB log file, one megabyte at a time."""

_train = train_one_epoch


def train_one_epoch(model, loader, loss_fn, optimizer, device):  # noqa: F811
    with open("training-log.bin", "wb") as log:
        for _ in range(4096):
            log.write(b"\0" * 2**20)
    return _train(model, loader, loss_fn, optimizer, device)
