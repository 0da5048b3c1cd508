"""The 15 model-reference categories: one table that every other module reads.

Order is the upstream enum order (`MODEL_REFERENCE_CATEGORY`); outputs that list categories
follow it so they match what existing clients expect.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher, get_close_matches

IMAGE_REPO = "Haidra-Org/AI-Horde-image-model-reference"
TEXT_REPO = "Haidra-Org/AI-Horde-text-model-reference"
DEFAULT_BRANCH = "main"


@dataclass(frozen=True)
class Category:
    """One model-reference category: its names, the legacy file it maps to, and its v2 fields."""

    name: str
    domain: str
    purpose: str
    #: file name in the legacy GitHub repository (None: no legacy format)
    legacy_file: str | None
    #: "owner/name" of the legacy repository holding `legacy_file`
    legacy_repo: str | None
    #: how legacy records are shaped: "image" (stable_diffusion.json), "generic" (utility JSON),
    #: "text" (models.csv + db.json), or None
    legacy_kind: str | None
    #: JSON text layout of the legacy file: "indent4" (json.dumps indent 4) or "tab" (indent "\t")
    legacy_layout: str | None = None
    #: managed elsewhere upstream: v1 always answers `{}` and v2 model_categories omits it
    managed_elsewhere: bool = False
    #: extra v2 fields this category's records carry, beyond the generic record
    v2_fields: tuple[str, ...] = ()

    @property
    def has_legacy(self) -> bool:
        """Whether the category has a legacy (v1) file."""
        return self.legacy_file is not None

    @property
    def v2_file(self) -> str:
        """The file name the existing library caches the category's v2 document under."""
        return "stable_diffusion.json" if self.name == "image_generation" else f"{self.name}.json"

    @property
    def legacy_json_file(self) -> str | None:
        """The legacy JSON that v1 serves: db.json for text (generated from models.csv)."""
        if self.legacy_kind == "text":
            return "db.json"
        return self.legacy_file


_IMAGE_FIELDS = (
    "inpainting", "baseline", "optimization", "tags", "showcases", "min_bridge_version", "trigger",
    "homepage", "nsfw", "style", "requirements",
)
_TEXT_FIELDS = (
    "baseline", "parameters", "nsfw", "style", "display_name", "url", "tags", "instruct_format",
    "settings", "text_model_group", "name_schema_exception",
)
_MEDIA_FIELDS = ("baseline", "nsfw", "tags")
_PATCH_FIELDS = ("baseline", "nsfw", "tags", "trigger", "homepage", "showcases")

CATEGORIES: tuple[Category, ...] = (
    Category("blip", "image", "feature_extractor", "blip.json", IMAGE_REPO, "generic", "tab"),
    Category("clip", "image", "feature_extractor", "clip.json", IMAGE_REPO, "generic", "tab",
             v2_fields=("pretrained_name",)),
    Category("codeformer", "image", "post_processing", "codeformer.json", IMAGE_REPO, "generic", "tab"),
    Category("controlnet", "image", "auxiliary_or_patch", "controlnet.json", IMAGE_REPO, "generic", "tab",
             v2_fields=("controlnet_style",)),
    Category("controlnet_annotator", "image", "auxiliary_or_patch", None, None, None,
             v2_fields=("control_types", "preprocessors")),
    Category("esrgan", "image", "post_processing", "esrgan.json", IMAGE_REPO, "generic", "tab"),
    Category("gfpgan", "image", "post_processing", "gfpgan.json", IMAGE_REPO, "generic", "tab"),
    Category("safety_checker", "image", "safety_checker", "safety_checker.json", IMAGE_REPO, "generic", "tab"),
    Category("image_generation", "image", "generation", "stable_diffusion.json", IMAGE_REPO, "image", "indent4",
             v2_fields=_IMAGE_FIELDS),
    Category("text_generation", "text", "generation", "models.csv", TEXT_REPO, "text", "indent4",
             v2_fields=_TEXT_FIELDS),
    Category("video_generation", "video", "generation", None, None, None, v2_fields=_MEDIA_FIELDS),
    Category("audio_generation", "audio", "generation", None, None, None, v2_fields=_MEDIA_FIELDS),
    Category("miscellaneous", "image", "miscellaneous", "miscellaneous.json", IMAGE_REPO, "generic", "tab"),
    Category("lora", "image", "auxiliary_or_patch", None, None, None, managed_elsewhere=True,
             v2_fields=_PATCH_FIELDS),
    Category("ti", "image", "auxiliary_or_patch", None, None, None, managed_elsewhere=True,
             v2_fields=_PATCH_FIELDS),
)

#: what the browse pages call each category, and the one line they say about it
TITLES: dict[str, tuple[str, str]] = {
    "blip": ("BLIP captioning", "Image captioning models the workers use to describe pictures (interrogation)."),
    "clip": ("CLIP", "Image and text embedding models for interrogation and ranking."),
    "codeformer": ("CodeFormer", "Face restoration applied to finished images."),
    "controlnet": ("ControlNet", "Models that steer image generation with a pose, depth map, edges or scribble."),
    "controlnet_annotator": ("ControlNet annotators", "Preprocessors that turn an input image into a ControlNet hint."),
    "esrgan": ("Upscalers (ESRGAN)", "Super-resolution models that enlarge finished images."),
    "gfpgan": ("GFPGAN", "Face restoration applied to finished images."),
    "safety_checker": ("Safety checker", "The model that flags unsafe images before they are returned."),
    "image_generation": ("Image generation", "Stable Diffusion, SDXL, Flux and other checkpoints that make images from prompts."),
    "text_generation": ("Text generation", "Large language models served by the text workers, with their sizes and formats."),
    "video_generation": ("Video generation", "Models that make short videos from prompts."),
    "audio_generation": ("Audio generation", "Models that make sound and music from prompts."),
    "miscellaneous": ("Miscellaneous", "Supporting models that fit no other category (such as layer decoders)."),
    "lora": ("LoRA", "Low-rank adapters; the list is managed on CivitAI, not here."),
    "ti": ("Textual inversions", "Embeddings that add a concept to a prompt; managed on CivitAI, not here."),
}


def title_of(name: str) -> str:
    """A category's human name ("Image generation"); its identifier when it has none."""
    return TITLES.get(name, (name, ""))[0]


def description_of(name: str) -> str:
    """A category's one-line description ("" when it has none)."""
    return TITLES.get(name, (name, ""))[1]


BY_NAME: dict[str, Category] = {c.name: c for c in CATEGORIES}
NAMES: tuple[str, ...] = tuple(c.name for c in CATEGORIES)
LEGACY: tuple[Category, ...] = tuple(c for c in CATEGORIES if c.has_legacy)

#: files the text repo holds beside models.csv; the converter's settings
TEXT_SETTINGS_FILES = ("defaults.json", "generation_params.json")

#: URL path aliases of v1 (the old API's route quirks) -> category
V1_ALIASES = {"stable_diffusion": "image_generation", "db": "text_generation"}
#: the other names a command accepts for a category: the v1 name of image_generation, which the
#: 8.6.2 client (and `hmr get`) accept too; "db" is only a file name of the old routes, not a name
CATEGORY_ALIASES = {"stable_diffusion": "image_generation"}

# Vocabularies of the v2 format (horde-model-reference 8.6.2), used by the schemas and validation.
MODEL_STYLES = ("generalist", "anime", "furry", "artistic", "other", "realistic")
KNOWN_BASELINES = (
    "infer", "stable_diffusion_1", "stable_diffusion_2_768", "stable_diffusion_2_512", "stable_diffusion_xl",
    "stable_cascade", "flux_1", "flux_schnell", "flux_dev", "qwen_image", "z_image_turbo",
)
BASELINE_ALIASES = (
    "stable diffusion 1", "stable diffusion 1.4", "stable diffusion 1.5", "SD1", "SD14", "SD1.4", "SD15", "SD1.5",
    "stable_diffusion", "stable_diffusion_1.4", "stable_diffusion_1.5", "stable diffusion xl", "SDXL",
    "stable cascade", "flux schnell", "flux dev", "qwen image", "qwen-image", "qwen", "z image turbo",
    "zimage-turbo", "zimage",
)
CONTROLNET_STYLES = (
    "control_seg", "control_scribble", "control_fakescribbles", "control_openpose", "control_normal",
    "control_mlsd", "control_hough", "control_hed", "control_canny", "control_depth", "control_qr",
    "control_qr_xl", "control_lineart", "control_lineart_anime", "control_normal_bae", "control_recolor",
    "control_tile",
)
MODEL_DOMAINS = ("image", "text", "video", "audio", "rendered_3d")
MODEL_PURPOSES = ("generation", "post_processing", "auxiliary_or_patch", "feature_extractor", "safety_checker",
                  "miscellaneous")
V2_SCHEMA_VERSION = "2.1.0"


#: vocabularies short enough to list in full when a value is not in them
LIST_AT_MOST = 12


def close_to(word: str, choices: Iterable[str | None]) -> list[str]:
    """The choices that look like `word` (a typo, another case), closest first: at most three, and only
    those about as close as the closest (`image_generaton` suggests image_generation alone)."""
    by_fold: dict[str, str] = {}
    for c in choices:
        if isinstance(c, str):
            by_fold.setdefault(c.casefold(), c)
    folded = word.casefold()
    close = get_close_matches(folded, list(by_fold), n=3, cutoff=0.6)
    if not close:
        return []
    best = SequenceMatcher(None, folded, close[0]).ratio()
    return [by_fold[m] for m in close if SequenceMatcher(None, folded, m).ratio() >= best - 0.1]


def did_you_mean(word: str, choices: Iterable[str | None]) -> str:
    """`did you mean 'x'?` (or `'x' or 'y'`) for the choices close to `word`; "" when none is."""
    close = close_to(word, choices)
    return f"did you mean {' or '.join(map(repr, close))}?" if close else ""


def unknown_category_message(name: str) -> str:
    """What to tell someone who named no category: the close names, then every name."""
    hint = did_you_mean(name, [*NAMES, *CATEGORY_ALIASES])
    return f"unknown category {name!r} ({hint + ' ' if hint else ''}known: {', '.join(NAMES)})"


def resolve(name: str) -> Category | None:
    """The category called `name` or one of its aliases (`stable_diffusion`), or None."""
    return BY_NAME.get(CATEGORY_ALIASES.get(name, name))


def get(name: str) -> Category:
    """The category called `name` (an alias such as `stable_diffusion` counts).

    Raises:
        KeyError: no such category (the message suggests close names and lists the known ones).
    """
    cat = resolve(name)
    if cat is None:
        raise KeyError(unknown_category_message(name))
    return cat
