"""How the Spark engine reads dates: as the pandas engine does (rfm_pandas.parse_dates), whatever
the session's time zone, timestamp type or SQL escaping settings say.

Every date becomes its wall-clock time in the user's time zone, as microseconds since 1970
counted as if that were UTC: instants (TIMESTAMP, zoned text) go through ``from_utc_timestamp``,
wall-clock times (TIMESTAMP_NTZ, DATE, naive text) are counted field by field, and text in a
``date_format`` is parsed against a written UTC offset, never in the session's zone.
"""

from __future__ import annotations

import re

from clvlab.core.errors import ClvlabError, DataValidationError
from clvlab.data.rfm_pandas import NUMBERS_ARE_NOT_DATES

__all__ = ["MICROS_PER_DAY", "wall_micros", "pandas_schema", "parquet_log"]

# ISO 8601 text as the pandas engine reads it (rfm_pandas.parse_dates): a value is zoned when a
# UTC offset follows a time of day (rfm_pandas.OFFSET_PATTERN), so a bare date ending in "-01"
# is not. Spark's own cast reads more (trailing blanks, zone names, signed years), so text
# outside these shapes is refused as pandas refuses it; both skip leading blanks. \z, not $:
# $ also matches before a final newline, which the cast would then trim away.
_TIME = r"[T ][0-9]{2}(?::[0-9]{2}(?::[0-9]{2}(?:[.][0-9]{1,9})?)?)?"
_NAIVE_TEXT = rf"^[ \t]*[0-9]{{4}}(?:-[0-9]{{1,2}}(?:-[0-9]{{1,2}}(?:{_TIME})?)?)?\z"
_ZONED_TEXT = (r"^[ \t]*[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}[T ][0-9]{2}:[0-9]{2}"
               r"(?::[0-9]{2}(?:[.][0-9]{1,9})?)? ?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)\z")
_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double")
MICROS_PER_DAY = 86_400_000_000


def wall_micros(frame, column: str, date_format: str | None, timezone: str):
    """The wall-clock time in ``timezone`` of each date, as microseconds since 1970 counted as if
    it were UTC (a Column, NULL where unparseable), and a Column telling zoned text from naive
    text (None for typed columns). Nothing depends on the session's time zone, timestamp type or
    SQL escaping: instants go through ``from_utc_timestamp``, wall-clock times are counted field
    by field, and text is parsed against an explicit offset."""
    from pyspark.sql import functions as F

    spark = frame.sparkSession
    dtype = dict(frame.dtypes)[column]
    quoted = "`" + column.replace("`", "``") + "`"
    value = F.col(quoted)
    if dtype == "timestamp":
        return _zoned_micros(value, timezone), None
    if dtype == "timestamp_ntz":
        return _naive_micros(value), None
    if dtype == "date":
        return F.unix_date(value).cast("bigint") * MICROS_PER_DAY, None
    if dtype in _NUMERIC or dtype.startswith("decimal"):
        if date_format is None:
            row = frame.select(value).limit(1).collect()[0][0]
            raise DataValidationError(column, NUMBERS_ARE_NOT_DATES, {column: row})
        # the pandas engine reads numbers with a format as their text (20240301 -> "20240301")
        value, dtype = value.cast("string"), "string"
    if dtype != "string":
        raise DataValidationError(column, f"dates of Spark type {dtype} are not supported; use "
                                          "timestamp, timestamp_ntz, date or string")
    if date_format is not None:
        return _formatted_micros(spark, value, date_format), None
    zoned = value.rlike(_ZONED_TEXT)
    # explicit LTZ/NTZ: with spark.sql.timestampType=TIMESTAMP_NTZ a cast to TIMESTAMP drops
    # the offset
    instant = F.expr(f"try_cast({quoted} AS TIMESTAMP_LTZ)")
    wall = F.expr(f"try_cast({quoted} AS TIMESTAMP_NTZ)")
    micros = (F.when(zoned, _zoned_micros(instant, timezone))
              .when(value.rlike(_NAIVE_TEXT), _naive_micros(wall)))
    return micros, zoned


def _zoned_micros(instant, timezone: str):
    from pyspark.sql import functions as F

    return F.unix_micros(F.from_utc_timestamp(instant, F.lit(timezone)))


def _naive_micros(wall):
    """Microseconds of a TIMESTAMP_NTZ from its fields: casting it to an instant (or
    timestampdiff) would go through the session's zone and move times it skips (02:30 on a
    spring-forward night)."""
    from pyspark.sql import functions as F

    return (F.unix_date(wall.cast("date")).cast("bigint") * MICROS_PER_DAY
            + F.hour(wall).cast("bigint") * 3_600_000_000 + F.minute(wall).cast("bigint") * 60_000_000
            + (F.date_part(F.lit("SECOND"), wall) * 1_000_000).cast("bigint"))


def _formatted_micros(spark, text, date_format: str):
    """Text in ``date_format`` as wall-clock microseconds (see :func:`wall_micros`)."""
    from pyspark.sql import functions as F

    if str(spark.conf.get("spark.sql.legacy.timeParserPolicy", "EXCEPTION")).upper() == "LEGACY":
        raise ClvlabError("date_format: this Spark session sets spark.sql.legacy.timeParserPolicy"
                          "=LEGACY, whose lenient parser reads dates the pandas engine refuses "
                          "(2024-02-30 as 2024-03-01); set it to CORRECTED for clvlab's job")
    pattern = _java_format(date_format)
    if str(spark.conf.get("spark.sql.timestampType", "TIMESTAMP_LTZ")).upper() == "TIMESTAMP_NTZ":
        # to_timestamp gives wall-clock times in this setting
        return _naive_micros(F.try_to_timestamp(text, F.lit(pattern)))
    # parsed against a written UTC offset, not in the session's zone: the instant's microseconds
    # are then the wall-clock time's, even one the session's zone skips
    return F.unix_micros(F.try_to_timestamp(F.concat(text, F.lit(" +00:00")),
                                            F.lit(pattern + " XXX")))


_STRPTIME = {"%Y": "yyyy", "%m": "M", "%d": "d", "%H": "H", "%M": "m", "%S": "s"}


def _java_format(date_format: str) -> str:
    """strptime codes to Spark's datetime pattern (the common ones), literal text quoted. One
    letter reads one or two digits as strptime does ("2024-3-1" with "%Y-%m-%d"); two codes side
    by side ("%Y%m%d") need fixed widths to be told apart."""
    tokens = re.findall(r"%.|%|[^%]+", date_format)
    out = []
    for i, token in enumerate(tokens):
        if token == "%%":
            out.append("'%'")
        elif token.startswith("%"):
            if token not in _STRPTIME:
                raise ClvlabError(f"date_format {date_format!r} has codes the Spark engine does "
                                  "not map (" + token + "); use %Y %m %d %H %M %S")
            letter = _STRPTIME[token]
            adjacent = any(0 <= j < len(tokens) and tokens[j] in _STRPTIME for j in (i - 1, i + 1))
            out.append(letter * 2 if adjacent and len(letter) == 1 else letter)
        else:
            out.append("'" + token.replace("'", "''") + "'")
    return "".join(out)


def pandas_schema(frame: pd.DataFrame):
    """The Spark schema of a pandas frame (Arrow's types, as pyspark infers them), with naive
    datetime columns as TIMESTAMP_NTZ."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_type
    from pyspark.sql.types import StructField, StructType, TimestampNTZType

    fields = []
    for field in pa.Schema.from_pandas(frame, preserve_index=False):
        naive = pa.types.is_timestamp(field.type) and field.type.tz is None
        fields.append(StructField(str(field.name),
                                  TimestampNTZType() if naive else from_arrow_type(field.type)))
    return StructType(fields)


def parquet_log(spark, files: list[str]):
    """The Parquet ``files`` as a Spark DataFrame, their naive timestamp columns as
    TIMESTAMP_NTZ. With spark.sql.parquet.inferTimestampNTZ.enabled=false Spark reads them as
    instants whose UTC time is the written wall-clock time; they are rebuilt from those UTC
    fields. Nanosecond timestamps (pandas < 3 writes them), which Spark cannot read, are refused
    with the fix."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    times = [field for field in pq.read_schema(files[0]) if pa.types.is_timestamp(field.type)]
    for field in times:
        if field.type.unit == "ns":
            raise DataValidationError(
                field.name, "Spark cannot read Parquet timestamps in nanoseconds", hint=(
                    f"rewrite {files[0]} with microseconds, e.g. pandas' "
                    "to_parquet(..., coerce_timestamps='us', allow_truncated_timestamps=True)"))
    frame = spark.read.parquet(*files)
    types = dict(frame.dtypes)
    for field in times:
        if field.type.tz is None and types.get(field.name) == "timestamp":
            quoted = "`" + field.name.replace("`", "``") + "`"
            micros = F.unix_micros(F.col(quoted))
            rest = F.pmod(micros, F.lit(MICROS_PER_DAY))
            day = F.date_from_unix_date(((micros - rest) / MICROS_PER_DAY).cast("int"))
            wall = F.make_timestamp_ntz(
                F.year(day), F.month(day), F.dayofmonth(day),
                (rest / 3_600_000_000).cast("int"), (F.pmod(micros, F.lit(3_600_000_000))
                                                     / 60_000_000).cast("int"),
                (F.pmod(micros, F.lit(60_000_000)) / 1_000_000).cast("decimal(8,6)"))
            frame = frame.withColumn(field.name, wall)
    return frame
