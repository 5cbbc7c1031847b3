"""Accent and case folding of Vietnamese names for fuzzy search."""

from mekong.shared.dicom.names import fold, folded_words, fuzzy_tokens


def test_fold_removes_vietnamese_accents_and_case() -> None:
    assert fold("Nguyễn Thị Hồng Nhung") == "NGUYEN THI HONG NHUNG"
    assert fold("Đặng Văn Đức") == "DANG VAN DUC"


def test_folded_words_pads_components_for_prefix_search() -> None:
    assert folded_words("Nguyễn^Thị Hồng Nhung") == " NGUYEN THI HONG NHUNG "
    assert folded_words("NGUYEN^VAN SON") == " NGUYEN VAN SON "
    assert folded_words("") == ""


def test_fuzzy_tokens_drop_wildcards() -> None:
    assert fuzzy_tokens("nguyễn* nh?ng") == ["NGUYEN", "NH", "NG"]
