"""The card holder's photo as image bytes a screen can show, when there is a way to get them.

A resident ID card's photo is in the vendor's compressed format (wlt) and only the vendor's
library decodes it (`photo_decoder` in the settings); a chip passport's DG2 holds a JPEG or
JPEG 2000 image. Without a way to decode, the screen shows a placeholder.
"""

from __future__ import annotations

import logging
from pathlib import Path

from devices.identity import Identity
from devices.readers.resident_id import PhotoDecoder, decoded_photo, load_wlt_decoder

log = logging.getLogger(__name__)

DISPLAYABLE_FORMATS = ("jpeg",)  # Qt's image plugins here read JPEG but not JPEG 2000


class PhotoSource:
    def __init__(self, wlt_decoder: PhotoDecoder | None = None) -> None:
        self._wlt = wlt_decoder

    @classmethod
    def from_library(cls, library: Path | None) -> PhotoSource:
        """With the vendor's decoder if it loads; a terminal without one still works."""
        if library is None:
            return cls()
        try:
            return cls(load_wlt_decoder(library))
        except (OSError, AttributeError) as exc:
            log.error("photo decoder %s cannot be loaded: %s", library, exc)
            return cls()

    def image(self, identity: Identity) -> bytes | None:
        """Image bytes (BMP, JPEG, JPEG 2000) or None when this photo cannot be shown."""
        if identity.photo and identity.photo_format in DISPLAYABLE_FORMATS:
            return identity.photo
        if identity.photo and identity.photo_format == "jpeg2000":
            return _jpeg2000_as_png(identity.photo)
        return decoded_photo(identity, self._wlt)


def _jpeg2000_as_png(data: bytes) -> bytes | None:
    """Many passports store the face as JPEG 2000; Pillow (with OpenJPEG) reads it."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            out = io.BytesIO()
            image.convert("RGB").save(out, format="PNG")
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        log.warning("JPEG 2000 photo not decoded: %s", type(exc).__name__)
        return None
    return out.getvalue()
