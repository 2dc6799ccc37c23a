"""Intravoxel incoherent motion (IVIM) diffusion model."""

from osteomri.models.ivim.signal import ivim_signal

__all__ = ["ivim_signal"]
