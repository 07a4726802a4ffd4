"""A gbench plugin: `kmnist`, Kuzushiji-MNIST (ten cursive hiragana), read from IDX files."""

from gbench import hookimpl
from gbench.data import idx_dataset

FILES = {  # split -> (images file, labels file); each may also be gzipped (.gz)
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@hookimpl
def gbench_register_datasets(register):
    register(
        idx_dataset(
            "kmnist",
            files=FILES,
            subdirs=("KMNIST/raw", "kmnist"),  # looked for under --data-root, $GBENCH_DATA, the cache
            torchvision_class="KMNIST",  # downloads into the cache when found nowhere (unless GBENCH_OFFLINE=1)
            image_shape=(1, 28, 28),
            class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
            description="Kuzushiji-MNIST: cursive Japanese characters, 60,000 train + 10,000 test, 1x28x28",
        )
    )
