"""Built-in datasets: MNIST and Fashion-MNIST, read from their IDX files."""

from gbench import hookimpl
from gbench.data import idx_dataset

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@hookimpl
def gbench_register_datasets(register):
    register(
        idx_dataset(
            "mnist",
            files=_IDX_FILES,
            subdirs=("MNIST/raw", "mnist", ""),
            torchvision_class="MNIST",
            class_names=tuple(str(digit) for digit in range(10)),
            description="MNIST handwritten digits, 60,000 train + 10,000 test, 1x28x28",
        )
    )
    register(
        idx_dataset(
            "fashion-mnist",
            files=_IDX_FILES,
            # torchvision's layout, a flat folder, then Debian's dataset-fashion-mnist package.
            subdirs=("FashionMNIST/raw", "fashion-mnist", ""),
            system_dirs=("/usr/share/datasets/fashion-mnist",),
            torchvision_class="FashionMNIST",
            class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
            description="Fashion-MNIST clothing images, 60,000 train + 10,000 test, 1x28x28",
        )
    )
