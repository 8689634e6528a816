"""Host bioware pipeline: MEA detection to AER, stochastic streams and light.

The public names match the published bioware API so scripts move over
unchanged; see docs/bioware.md for where the behaviour is stricter.
"""

from .artifacts import ArtifactRejector
from .audit import AuditError, BioAuditLog
from .bursts import NetworkBurst, detect_network_bursts
from .detection import DetectedSpike, DetectionBatch, SpikeDetector
from .fitness import mea_fitness_hook
from .health import CultureHealth
from .latency import LatencyBudget
from .lfp import LFP_BANDS, extract_lfp_power
from .mea import MEAConfig, MEALayout
from .opto import OptogeneticPulse, SCToOptoEncoder
from .pharmacology import PharmModel
from .plasticity import BCMPlasticity, BiologicalSTDP, HomeostaticPlasticity
from .plate import MultiWellPlate
from .session import BioHybridFrameResult, BioHybridSession
from .sorting import SpikeSorter
from .stochastic import AERToSCConverter, decode_bitstream_rate, density_code
from .transcoding import AEREvent, MEAToAERTranscoder, events_to_words, words_to_events

__all__ = [
    "MEALayout", "MEAConfig", "SpikeDetector", "DetectedSpike", "DetectionBatch",
    "MEAToAERTranscoder", "AEREvent", "events_to_words", "words_to_events",
    "AERToSCConverter", "decode_bitstream_rate", "density_code",
    "SCToOptoEncoder", "OptogeneticPulse", "BiologicalSTDP", "BCMPlasticity",
    "HomeostaticPlasticity", "CultureHealth", "SpikeSorter", "ArtifactRejector", "PharmModel",
    "LatencyBudget", "extract_lfp_power", "LFP_BANDS", "detect_network_bursts", "NetworkBurst",
    "MultiWellPlate", "BioAuditLog", "AuditError", "mea_fitness_hook",
    "BioHybridSession", "BioHybridFrameResult",
]

