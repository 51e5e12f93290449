"""What the terminal accepts from the platform and from a service catalogue, in one place.

The catalogue and every platform answer come over the network. These caps keep reading one answer,
loading one catalogue and checking one form answer bounded in time and memory, whatever was sent.
docs/api.md ("Catalogue format", "Limits") states them for platform operators.
"""

from __future__ import annotations

MIB = 1024 * 1024

# Bytes read from the network or from disk before the rest is refused unread.
MAX_CATALOGUE_BYTES = 2 * MIB  # GET /catalogue, the cached copy and the bundled copy
MAX_RESPONSE_BYTES = 1 * MIB  # every other platform answer
# A body that trickles in a byte at a time would pass the byte caps slowly but never end; the read
# timeout only covers each single read, so the whole body also has a deadline.
RESPONSE_DEADLINE_S = 120.0

# The shape of the catalogue.
MAX_SERVICES = 200
MAX_QUESTIONS = 100  # per service
MAX_OPTIONS = 200  # per choice question
MAX_NAME_CHARS = 100  # service ids and field names
MAX_TEXT_CHARS = 5000  # one text in one language: a label, a help text, a guide paragraph

# Form schemas.
MAX_SCHEMA_DEPTH = 32  # nested objects and arrays in one form
MAX_SCHEMA_NODES = 2000  # objects in one form, counting each use of a $ref target again
# Objects in all the forms of a catalogue. Checking a form against the JSON Schema metaschema
# costs about a quarter of a millisecond per object, so this bounds parsing a catalogue to a few
# seconds on a terminal, at start-up as much as on refresh.
MAX_CATALOGUE_SCHEMA_NODES = 20_000
MAX_SCHEMA_ARRAY = 1000  # items in one array of a form (an enum, a list of subschemas)
MAX_PATTERN_CHARS = 500  # one `pattern` or `patternProperties` key
MAX_PATTERN_PROGRAM = 10_000  # compiled size of one pattern (RE2 instructions)
MAX_FORM_PATTERN_PROGRAM = 50_000  # compiled size of all the patterns of one form
PATTERN_MAX_MEMORY = 8 * MIB  # what RE2 may use to compile one pattern

# Answers. A schema's own maxLength applies when smaller; this one applies when it says nothing.
MAX_ANSWER_CHARS = 2000
