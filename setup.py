"""Distribution of siammatch: one-shot product matching with Siamese networks."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="siammatch",
    version="0.1.0",
    description=(
        "One-shot reference-to-scene matching for e-commerce with the Siamese tracker "
        "family, a Siamese Mask R-CNN, a FAISS catalog and an HTTP service"
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["matcher*", "index*", "api*", "trainers*"]),
    package_data={"api": ["templates/*.html", "static/*.js", "static/*.css"]},
    install_requires=[
        "torch>=2.15",
        "torchvision>=0.29",
        "numpy>=2.0",
        "opencv-python-headless>=4.10",
        "pillow>=10.0",
        "pyyaml>=6.0",
        "filelock>=3.12",
        "pycocotools>=2.0.8",
        "tqdm>=4.66",
        "scikit-image>=0.24",
        "tensorboard>=2.15",
        "faiss-cpu>=1.8",
        "flask>=3.0",
        "gunicorn>=22.0",
        "prometheus-client>=0.20",
        "apispec>=6.6",
        "apispec-webframeworks>=1.2",
        "psycopg[binary,pool]>=3.2",
    ],
    extras_require={
        "dev": [
            "pytest>=8.0",
            "pytest-xdist>=3.5",
            "ruff>=0.6",
            "requests>=2.31",
            "playwright>=1.50",
        ],
        "gpu": ["faiss-gpu-cu12>=1.8"],
    },
    entry_points={"console_scripts": ["siammatch = api.cli:main"]},
)
