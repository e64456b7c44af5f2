"""Assignment 1 - Ben. Loads CIFAR-2 images."""

import os

import torch
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader, Dataset

CIFAR2_LABELS = {"airplane": 0, "bird": 1}


class CifarImageFolder(Dataset):
    def __init__(self, root, split="train", label_map=CIFAR2_LABELS, transform=None):
        self.transform = transform
        self.data = []
        # load everything up front so __getitem__ is fast
        for name, label in label_map.items():
            folder = os.path.join(root, split, name)
            for f in sorted(os.listdir(folder)):
                if f.endswith((".png", ".jpg", ".jpeg")):
                    self.data.append((Image.open(os.path.join(folder, f)).convert("RGB"), label))

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        img, label = self.data[i]
        if self.transform:
            img = self.transform(img)
        return img, label


def channel_stats(dataset):
    to_tensor = T.ToTensor()
    means = []
    for i in range(len(dataset)):
        img, _ = dataset[i]
        means.append(to_tensor(img).mean(dim=(1, 2)))
    means = torch.stack(means)
    return means.mean(dim=0), means.std(dim=0)


def make_loader(dataset, batch_size, shuffle, num_workers=0):
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers)
