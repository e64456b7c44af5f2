"""Assignment 1 -- Ada Lovelace. CIFAR-2 image folder dataset."""

import glob
import os

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

CIFAR2_LABELS = {"airplane": 0, "bird": 1}


class CifarImageFolder(Dataset):
    """Lists the image files at construction and loads each image in __getitem__."""

    def __init__(self, root, split="train", label_map=CIFAR2_LABELS, transform=None):
        split_dir = os.path.join(root, split)
        if not os.path.isdir(split_dir):
            raise FileNotFoundError(f"split folder not found: {split_dir}")
        self.transform = transform
        self.paths = []
        self.labels = []
        for class_name in label_map:
            class_dir = os.path.join(split_dir, class_name)
            if not os.path.isdir(class_dir):
                raise ValueError(f"no folder for class '{class_name}' in {split_dir}")
            found = []
            for pattern in ("*.png", "*.jpg", "*.jpeg"):
                found.extend(glob.glob(os.path.join(class_dir, pattern)))
            for path in sorted(found):
                self.paths.append(path)
                self.labels.append(int(label_map[class_name]))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, idx):
        img = Image.open(self.paths[idx]).convert("RGB")
        if self.transform is not None:
            img = self.transform(img)
        return img, self.labels[idx]


def channel_stats(dataset):
    # Welford-style running totals per channel, in float64 so 10k images don't lose precision
    n = 0
    total = np.zeros(3)
    total_sq = np.zeros(3)
    for i in range(len(dataset)):
        img, _ = dataset[i]
        x = np.asarray(img, dtype=np.float64).reshape(-1, 3) / 255.0
        n += x.shape[0]
        total += x.sum(axis=0)
        total_sq += (x**2).sum(axis=0)
    mean = total / n
    var = total_sq / n - mean**2
    return torch.tensor(mean, dtype=torch.float32), torch.tensor(np.sqrt(var), dtype=torch.float32)


def make_loader(dataset, batch_size, shuffle, num_workers=0):
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers)
