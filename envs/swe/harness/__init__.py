"""SWE-bench parity: how an instance is tested (:mod:`.spec`), how its log is read
(:mod:`.parsers`, SWE-bench's own parsers when ``swebench`` is installed) and which image it runs
in and how that image is laid out (:mod:`.images`)."""

from turngym.envs.swe.harness.images import (
    IMAGE_FAMILIES,
    SWEBENCH_REPOS,
    ImageContract,
    ImageMapping,
    contract_for,
    image_command,
    image_for,
    swebench_image,
    swegym_image,
    turngym_image,
    validate_image_map,
)
from turngym.envs.swe.harness.parsers import (
    FAMILIES,
    REPO_PARSER,
    parse_log,
    parser_for_repo,
    swebench_parser,
    swebench_version,
    test_key,
)
from turngym.envs.swe.harness.spec import (
    NON_TEST_EXTS,
    REPO_TIMEOUTS,
    TestSpec,
    grade_timeout,
    test_files_from_ids,
    test_files_from_patch,
    test_spec,
)

#: The parser families (kept under its old name).
PARSERS = FAMILIES

__all__ = [
    "IMAGE_FAMILIES",
    "SWEBENCH_REPOS",
    "ImageContract",
    "ImageMapping",
    "contract_for",
    "image_command",
    "image_for",
    "swebench_image",
    "swegym_image",
    "turngym_image",
    "validate_image_map",
    "FAMILIES",
    "PARSERS",
    "REPO_PARSER",
    "parse_log",
    "parser_for_repo",
    "swebench_parser",
    "swebench_version",
    "test_key",
    "NON_TEST_EXTS",
    "REPO_TIMEOUTS",
    "TestSpec",
    "grade_timeout",
    "test_files_from_ids",
    "test_files_from_patch",
    "test_spec",
]
