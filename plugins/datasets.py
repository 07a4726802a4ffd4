"""Built-in datasets: MNIST and Fashion-MNIST (IDX files), Stacked MNIST, and torchvision's colour sets."""

from gbench import hookimpl
from gbench.data import idx_dataset
from gbench.stacked_mnist import stacked_mnist_dataset
from gbench.vision_sets import celeba_dataset, cifar_dataset, stl10_dataset, svhn_dataset

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@hookimpl
def gbench_register_datasets(register):
    mnist = idx_dataset(
        "mnist",
        files=_IDX_FILES,
        subdirs=("MNIST/raw", "mnist", ""),
        torchvision_class="MNIST",
        class_names=tuple(str(digit) for digit in range(10)),
        description="MNIST handwritten digits, 60,000 train + 10,000 test, 1x28x28",
    )
    register(mnist)
    register(
        idx_dataset(
            "fashion-mnist",
            files=_IDX_FILES,
            # torchvision's layout, a flat folder, then Debian's dataset-fashion-mnist package.
            subdirs=("FashionMNIST/raw", "fashion-mnist", ""),
            system_dirs=("/usr/share/datasets/fashion-mnist",),
            torchvision_class="FashionMNIST",
            class_names=(
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ),
            description="Fashion-MNIST clothing images, 60,000 train + 10,000 test, 1x28x28",
        )
    )
    register(stacked_mnist_dataset(mnist))
    register(cifar_dataset("cifar10"))
    register(cifar_dataset("cifar100"))
    register(svhn_dataset())
    register(stl10_dataset())
    register(celeba_dataset())
