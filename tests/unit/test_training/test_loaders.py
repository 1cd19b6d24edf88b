from pathlib import Path

import pandas as pd
import pytest

from kinds.false_marketing.data import load_marketing_file
from kinds.listing_quality.pipeline import load_listing_file
from kinds.listing_quality.record import LISTING_COLUMNS
from training.data.loaders import DataValidationError, read_table, validate_columns


def _good_rows() -> pd.DataFrame:
    return pd.DataFrame({
        "listing_id": ["a", "b"], "title": ["口红", "坚果"], "category": ["beauty", "food"],
        "price": [10.0, 20.0], "is_inferior": [1, 0],
    })


def test_missing_required_columns_are_all_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    _good_rows().drop(columns=["price", "category"]).to_csv(path, index=False)
    with pytest.raises(DataValidationError, match="category, price") as info:
        load_listing_file(path)
    assert info.value.field == "category"


def test_mistyped_numeric_column_is_named_with_row(tmp_path: Path) -> None:
    frame = _good_rows()
    frame["price"] = ["10.5", "cheap"]
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    message = r"bad.csv: column 'price' must be numeric; row 2 \(line 3\) holds 'cheap'"
    with pytest.raises(DataValidationError, match=message):
        load_listing_file(path)


def test_a_row_after_a_quoted_field_spanning_lines_is_named_by_the_line_it_starts_on(tmp_path: Path) -> None:
    path = tmp_path / "segments.csv"
    path.write_text('text,labels\n"第一行\n第二行",\n\n好,made_up\n', encoding="utf-8")
    with pytest.raises(DataValidationError) as info:
        load_marketing_file(path)
    assert str(info.value).startswith(f"{path}: column 'labels', row 2 (line 5): unknown category 'made_up'")
    path.write_text('text,labels\n好,\n   \n好,made_up\n', encoding="utf-8")  # a white-space line, skipped
    with pytest.raises(DataValidationError, match=r"row 2 \(line 4\): unknown category"):
        load_marketing_file(path)
    path.with_suffix(".txt").write_text("text\tlabels\n好\t\n\n好\tmade_up\n", encoding="utf-8")  # read as TSV
    with pytest.raises(DataValidationError, match=r"row 2 \(line 4\): unknown category"):
        load_marketing_file(path.with_suffix(".txt"))


def test_labels_must_be_binary() -> None:
    frame = _good_rows()
    frame["is_inferior"] = [1, 2]
    with pytest.raises(DataValidationError, match="^x.csv: column 'is_inferior' must hold 0/1 labels; found 2"):
        validate_columns(frame, LISTING_COLUMNS, "x.csv")  # the file is named (it was not)


def test_boolean_labels_and_absent_optional_columns_are_accepted(tmp_path: Path) -> None:
    frame = _good_rows()
    frame["is_inferior"] = ["true", "false"]
    path = tmp_path / "ok.jsonl"
    frame.to_json(path, orient="records", lines=True, force_ascii=False)
    loaded = load_listing_file(path)
    assert loaded["is_inferior"].tolist() == [1, 0]
    assert loaded["rating"].isna().all()
    assert loaded["description"].tolist() == ["", ""]


def test_unsupported_suffix_and_missing_file_are_explained(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="unsupported file type"):
        read_table(Path(__file__))
    with pytest.raises(DataValidationError, match="does not exist"):
        read_table(tmp_path / "nope.csv")


def test_an_empty_or_unreadable_file_is_one_clear_error(tmp_path) -> None:

    empty = tmp_path / "labels.parquet"
    empty.write_bytes(b"")
    with pytest.raises(DataValidationError, match="is empty"):
        read_table(empty)
    broken = tmp_path / "labels.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(DataValidationError, match="cannot be read as parquet") as caught:
        read_table(broken)
    assert "\n" not in str(caught.value)


def test_a_json_array_is_read_as_records(tmp_path) -> None:

    array = tmp_path / "labels.json"
    array.write_text('\n [{"title": "a", "is_inferior": 1}, {"title": "b", "is_inferior": 0}]', encoding="utf-8")
    lines = tmp_path / "labels2.json"
    lines.write_text('{"title": "a", "is_inferior": 1}\n{"title": "b", "is_inferior": 0}\n', encoding="utf-8")
    for path in (array, lines):
        frame = read_table(path)
        assert list(frame["title"]) == ["a", "b"] and list(frame["is_inferior"]) == [1, 0]


def test_segment_file_errors_count_rows_from_1_and_name_the_path_as_given(tmp_path: Path) -> None:
    path = tmp_path / "folder" / "segments.csv"
    path.parent.mkdir()
    pd.DataFrame({"text": ["好", "坏"], "labels": ["", "made_up"]}).to_csv(path, index=False)
    with pytest.raises(DataValidationError) as info:
        load_marketing_file(path)
    assert str(info.value).startswith(f"{path}: column 'labels', row 2 (line 3): unknown category 'made_up'")
    pd.DataFrame({"text": ["", "坏"], "labels": ["", ""]}).to_parquet(path.with_suffix(".parquet"))
    with pytest.raises(DataValidationError, match="is empty in row 1[.]") as info:
        load_marketing_file(path.with_suffix(".parquet"))
    assert str(path.with_suffix(".parquet")) in str(info.value)


def test_a_value_the_api_refuses_is_named_with_its_row_not_scored(tmp_path: Path) -> None:
    frame = _good_rows()
    frame["rating"] = [4.5, 9.0]  # the API takes 0..5
    path = tmp_path / "ratings.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"'rating' must be at most 5 .*row 2 \(line 3\) holds 9") as info:
        load_listing_file(path)
    assert info.value.field == "rating"
    frame["rating"] = [4.5, None]  # missing is left to the model
    frame["price"] = [10.0, -5.0]
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"'price' must be at least 0") as info:
        load_listing_file(path)
    frame["price"] = [10.0, 0.0]
    frame.to_csv(path, index=False)
    assert len(load_listing_file(path)) == 2


def test_a_number_field_holding_text_or_true_is_named_where_bounds_are_checked() -> None:
    from kinds.listing_quality.record import ListingRecord
    from training.data.loaders import binary_labels, check_bounds

    # evaluate's path: a price of "abc" was a ValueError traceback, a label "no" too
    with pytest.raises(DataValidationError, match=r"f.csv: column 'price' must hold numbers; row 2 holds 'abc'"):
        check_bounds(pd.DataFrame({"price": ["10", "abc"]}), ListingRecord, "f.csv")
    with pytest.raises(DataValidationError, match=r"'price' must hold numbers, not true/false"):
        check_bounds(pd.DataFrame({"price": [True, False]}), ListingRecord, "f.parquet")
    check_bounds(pd.DataFrame({"list_price": ["10", None], "title": ["a", "b"]}), ListingRecord, "f.csv")  # optional
    with pytest.raises(DataValidationError, match=r"'price' must hold a number in every row"):
        check_bounds(pd.DataFrame({"price": ["10", None]}), ListingRecord, "f.csv")  # the API requires a price
    with pytest.raises(DataValidationError, match=r"f.csv: column 'is_inferior' must hold 0/1 labels; found 'no'"):
        binary_labels(pd.Series(["1", "no"]), "is_inferior", "f.csv")


@pytest.mark.parametrize(("column", "values", "expected"), [
    ("category", ["beauty", "BEAUTY"], r"'category' must be one of beauty, food, .*row 2 \(line 3\) holds 'BEAUTY'"),
    ("category", ["beauty", "cosmetics"], r"'category' must be one of .* holds 'cosmetics'"),
    ("title", ["口红", ""], r"'title' must hold text in every row"),
    ("title", ["口红", "x" * 501], r"'title': String should have at most 500 characters"),
    ("title", ["口红", "!!!"], r"'title': .*letter or digit.* row 2 \(line 3\) holds '!!!'"),
    ("image_count", [3, 2.5], r"'image_count' must hold whole numbers; row 2 \(line 3\) holds 2.5"),
])
def test_a_training_row_the_api_would_refuse_is_named(column, values, expected, tmp_path: Path) -> None:
    # Upper-cased categories trained a model whose category medians the API never reads (it
    # sends lower case), and empty or over-long titles trained on text the API refuses.
    frame = _good_rows()
    frame[column] = values
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=expected):
        load_listing_file(path)


def test_a_json_line_giving_a_number_as_text_or_true_is_refused(tmp_path: Path) -> None:
    # JSON keeps its types: batch and the API refuse "27.4" and true for a number; training coerced them.
    for value, shown in (('"27.4"', "'27.4'"), ("true", "True")):
        path = tmp_path / "rows.jsonl"
        path.write_text('{"listing_id": "a", "title": "口红", "category": "beauty", "price": 10, "is_inferior": 1}\n'
                        f'{{"listing_id": "b", "title": "坚果", "category": "food", "price": {value}, '
                        '"is_inferior": 0}\n',
                        encoding="utf-8")
        with pytest.raises(DataValidationError, match=f"'price' must be numeric; row 2 .*holds {shown}"):
            load_listing_file(path)


def test_a_null_the_api_accepts_is_left_to_the_model_and_a_missing_category_is_refused(tmp_path: Path) -> None:
    from kinds.merchant_risk.record import MerchantRecord
    from training.data.loaders import check_bounds

    # A merchant's behaviour fields must be present in a call but take null (unknown): a NaN is
    # left to the model, as before; a listing's category takes no null.
    check_bounds(pd.DataFrame({"cs_response_minutes": [3.0, None]}), MerchantRecord, "m.parquet")
    frame = _good_rows()
    frame["category"] = ["beauty", None]
    frame.to_parquet(tmp_path / "rows.parquet")
    with pytest.raises(DataValidationError, match=r"'category' must be one of .* row 2 holds ''"):
        load_listing_file(tmp_path / "rows.parquet")


def test_a_json_array_keeps_its_types_as_json_lines_do(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text('[{"listing_id": "00", "title": "口红", "category": "beauty", "price": 10, "is_inferior": 1},'
                    ' {"listing_id": "01", "title": "坚果", "category": "food", "price": "27.4", "is_inferior": 0}]',
                    encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"'price' must be numeric; row 2 .*holds '27.4'"):
        load_listing_file(path)
    path.write_text(path.read_text(encoding="utf-8").replace('"27.4"', "27.4"), encoding="utf-8")
    assert load_listing_file(path)["listing_id"].tolist() == ["00", "01"]  # ids keep their zeros
    path.write_text(path.read_text(encoding="utf-8"), encoding="utf-8-sig")  # Notepad's UTF-8, with a BOM
    assert len(load_listing_file(path)) == 2
