"""Credits for the source datasets the project knows, shown in the card of every config built from them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    name: str
    url: str
    licence: str
    citation: str
    note: str = ""


SOURCES: dict[str, Source] = {
    "roadscene": Source(
        name="RoadScene",
        url="https://github.com/hanna-xu/RoadScene",
        licence="none stated by the authors",
        citation=(
            "H. Xu, J. Ma, Z. Le, J. Jiang, X. Guo. FusionDN: A Unified Densely Connected Network for Image "
            "Fusion. AAAI 2020. — H. Xu, J. Ma, J. Jiang, X. Guo, H. Ling. U2Fusion: A Unified Unsupervised "
            "Image Fusion Network. IEEE TPAMI 44(1), 2022."
        ),
        note="Imagery derives from the FLIR ADAS (thermal) dataset by Teledyne FLIR; its terms apply too.",
    ),
    "tno": Source(
        name="TNO Image Fusion Dataset",
        url="https://doi.org/10.6084/m9.figshare.1008029",
        licence="see the figshare record",
        citation="A. Toet. The TNO Multiband Image Data Collection. Data in Brief 15, 249-251, 2017.",
    ),
    "msrs": Source(
        name="MSRS (Multi-Spectral Road Scenarios)",
        url="https://github.com/Linfeng-Tang/MSRS",
        licence="see the source repository",
        citation=(
            "L. Tang, J. Yuan, H. Zhang, X. Jiang, J. Ma. PIAFusion: A progressive infrared and visible image "
            "fusion network based on illumination aware. Information Fusion 83-84, 79-92, 2022."
        ),
    ),
    "m3fd": Source(
        name="M3FD",
        url="https://github.com/JinyuanLiu-CV/TarDAL",
        licence="see the source repository",
        citation=(
            "J. Liu, X. Fan, Z. Huang, G. Wu, R. Liu, W. Zhong, Z. Luo. Target-aware Dual Adversarial Learning "
            "and a Multi-scenario Multi-Modality Benchmark to Fuse Infrared and Visible for Object Detection "
            "(TarDAL). CVPR 2022."
        ),
    ),
}


def source_for(name: str) -> Source | None:
    """The credits of a dataset by its name in the pairs table or the config name (case-insensitive)."""
    return SOURCES.get(name.lower().replace("-", "").replace("_", ""))
