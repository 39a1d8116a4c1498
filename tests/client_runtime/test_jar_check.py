"""The compatibility check of jars, on class files javac compiles here: what it finds, named by class, method
and source line, and the bytecode it must walk to get there."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from client_runtime import compat, jar_check, jvm
from client_runtime.jar_check import ClassFileError, Reference
from client_runtime.settings import ClientSettings
from tests.support import compile_jar

SPARK_ROUTER = str(Path(sys.executable).parent / "spark-router")

# Markers (// HERE:name) say on which line each finding must be.
JOB = textwrap.dedent("""\
    package acme;

    import io.sparkrouter.session.RouterSession;
    import java.util.Arrays;
    import org.apache.spark.api.java.JavaRDD;
    import org.apache.spark.api.java.JavaSparkContext;
    import org.apache.spark.sql.Dataset;
    import org.apache.spark.sql.Row;
    import org.apache.spark.sql.SparkSession;

    public class Job {
        public static void main(String[] args) {
            SparkSession spark = RouterSession.builder().getOrCreate();
            long big = 0;
            switch (args.length) {  // a tableswitch before the finding: its padding must be skipped
                case 0: big = 1; break;
                case 1: big = 2; break;
                case 2: big = 3; break;
                default: big = 4;
            }
            switch (args.length * 1000) {  // a lookupswitch
                case 0: big += 10; break;
                case 100000: big += 20; break;
                default: big += 30;
            }
            JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());  // HERE:sc
            JavaRDD<Integer> numbers = sc.parallelize(Arrays.asList(1, 2, 3));  // HERE:parallelize
            System.out.println(numbers.count() + big + Helper.rows(spark.range(3).toDF()));  // HERE:count
        }
    }
    """)
HELPER = textwrap.dedent("""\
    package acme;

    import org.apache.spark.sql.Dataset;
    import org.apache.spark.sql.Row;
    import org.apache.spark.sql.SparkSession;

    class Helper {
        static long rows(Dataset<Row> df) {
            return df.javaRDD().count();  // HERE:javaRDD
        }

        static Runnable later(SparkSession spark) {
            return () -> ((org.apache.spark.sql.classic.SparkSession) spark).sessionState();  // HERE:lambda
        }
    }
    """)
# In the jar, but not used by Job: checked only when the whole jar is.
UNUSED = textwrap.dedent("""\
    package acme;

    import java.util.function.Function;
    import org.apache.spark.api.java.JavaRDD;

    public class Unused {
        static Function<JavaRDD<String>, Long> counter() {
            return JavaRDD::count;
        }
    }
    """)
READY = textwrap.dedent("""\
    package acme;

    import io.sparkrouter.session.RouterSession;
    import org.apache.spark.sql.SparkSession;
    import org.apache.spark.sql.api.java.UDF1;
    import org.apache.spark.sql.types.DataTypes;

    public class Ready {
        public static void main(String[] args) {
            SparkSession spark = RouterSession.builder().getOrCreate();
            spark.udf().register("twice", (UDF1<Long, Long>) x -> 2 * x, DataTypes.LongType);
            spark.range(10).selectExpr("twice(id)").show();
        }
    }
    """)


def line_of(source: str, marker: str) -> int:
    return next(number for number, line in enumerate(source.splitlines(), 1) if f"// HERE:{marker}" in line)


@pytest.fixture(scope="module")
def jars(tmp_path_factory) -> dict[str, Path]:
    settings = ClientSettings()
    base = tmp_path_factory.mktemp("jars")
    sources = base / "src" / "acme"
    sources.mkdir(parents=True)
    for name, text in (("Job", JOB), ("Helper", HELPER), ("Unused", UNUSED), ("Ready", READY)):
        (sources / f"{name}.java").write_text(text)
    everything = [sources / f"{name}.java" for name in ("Job", "Helper", "Unused")]
    ready = compile_jar(base / "ready.jar", [sources / "Ready.java"], jvm.compile_classpath(settings),
                        "acme.Ready")
    return {"job": compile_jar(base / "job.jar", everything, jvm.classic_classpath(settings), "acme.Job"),
            "plain": compile_jar(base / "plain.jar", everything, jvm.classic_classpath(settings)),
            "ready": ready}


def test_findings_name_the_class_method_and_line(jars):
    found = {(Path(f.path.split("!")[1]).name, f.line, f.what) for f in jar_check.check_jar(jars["job"])}
    assert found == {
        ("Job.java", line_of(JOB, "sc"), "acme.Job.main uses SparkSession.sparkContext()"),
        ("Job.java", line_of(JOB, "sc"), "acme.Job.main uses JavaSparkContext.fromSparkContext()"),
        ("Job.java", line_of(JOB, "parallelize"), "acme.Job.main uses JavaSparkContext.parallelize()"),
        ("Job.java", line_of(JOB, "count"), "acme.Job.main uses JavaRDD.count()"),
        ("Helper.java", line_of(HELPER, "javaRDD"), "acme.Helper.rows uses Dataset.javaRDD()"),
        ("Helper.java", line_of(HELPER, "javaRDD"), "acme.Helper.rows uses JavaRDD.count()"),
        ("Helper.java", line_of(HELPER, "lambda"), "acme.Helper.later (lambda) uses "
                                                   "classic.SparkSession.sessionState()"),
    }
    first = jar_check.check_jar(jars["job"])[0]
    assert first.path == f"{jars['job']}!acme/Helper.java" and "RDD" in first.why
    # As the router stores it: the file, line and what, for the decision's reason.
    assert str(first).startswith(f"{jars['job']}!acme/Helper.java:{line_of(HELPER, 'javaRDD')}: "
                                 "acme.Helper.rows")


def test_only_the_classes_the_main_class_uses_are_checked(jars):
    # job.jar's manifest names acme.Job; Unused is not reached from it.
    assert not any("Unused" in f.what for f in jar_check.check_jar(jars["job"]))
    # A jar without Main-Class: every class. Unused's method reference is in its bootstrap methods, not code.
    every = jar_check.check_jar(jars["plain"])
    assert ("acme.Unused uses AbstractJavaRDDLike.count()", 0) in {(f.what, f.line) for f in every}
    # A main class given: what it uses, whatever the manifest says.
    found = jar_check.check_jar(jars["job"], "acme.Unused")
    assert [f.what for f in found] == ["acme.Unused uses AbstractJavaRDDLike.count()"]
    with pytest.raises(ClassFileError, match="has no class acme.Nope"):
        jar_check.check_jar(jars["job"], "acme.Nope")


def test_a_connect_ready_jar_passes_and_compat_dispatches_jars(jars):
    assert jar_check.check_jar(jars["ready"]) == []
    assert compat.check_path(jars["ready"]) == []
    assert len(compat.check_path(jars["job"])) == 7


@pytest.mark.parametrize("reference, what, unsupported", [
    (Reference("org/apache/spark/SparkContext$", "MODULE$", "Lorg/apache/spark/SparkContext$;"),
     "SparkContext.MODULE$", True),  # a Scala object
    (Reference("org/apache/spark/rdd/RDD", "map", "(Lscala/Function1;)Lorg/apache/spark/rdd/RDD;", True),
     "RDD.map()", True),
    (Reference("org/apache/spark/sql/SparkSession", "createDataFrame",
               "(Lorg/apache/spark/api/java/JavaRDD;Ljava/lang/Class;)Lorg/apache/spark/sql/Dataset;", True),
     "SparkSession.createDataFrame()", True),  # a supported method with an RDD in its signature
    (Reference("org/apache/spark/sql/SparkSession", "sqlContext", "()Lorg/apache/spark/sql/SQLContext;",
               True),
     "SparkSession.sqlContext()", True),
    (Reference("org/apache/spark/sql/SparkSession", "sharedState", "()Ljava/lang/Object;", True),
     "SparkSession.sharedState()", True),
    (Reference("org/apache/spark/api/java/JavaSparkContext", "<init>", "(Lorg/apache/spark/SparkConf;)V",
               True),
     "new JavaSparkContext", True),
    (Reference("org/apache/spark/sql/Dataset", "foreachPartition",
               "(Lorg/apache/spark/api/java/function/ForeachPartitionFunction;)V", True),
     "Dataset.foreachPartition()", False),  # Java function interfaces work on Connect
    (Reference("org/apache/spark/sql/functions", "udf", None, True), "functions.udf()", False),
    (Reference("org/apache/spark/SparkConf", None, None), "SparkConf", False),
])
def test_what_is_unsupported(reference, what, unsupported):
    assert jar_check.describe(reference) == what
    assert (jar_check.why_unsupported(reference) is not None) is unsupported


def test_the_bytecode_walk_on_sparks_own_classes():
    """Every instruction that names a constant names one of the kind its opcode takes, in every method of a
    jar of Scala-compiled code (switches, wide, invokedynamic): a wrong instruction length would read operands
    as opcodes."""
    expected = {0xb6: {10, 11}, 0xb7: {10, 11}, 0xb8: {10, 11}, 0xb9: {11}, 0xba: {18}, 0xb2: {9}, 0xb3: {9},
                0xb4: {9}, 0xb5: {9}, 0xbb: {7}, 0xbd: {7}, 0xc0: {7}, 0xc1: {7}, 0xc5: {7},
                0x12: {3, 4, 7, 8, 15, 16, 17}, 0x13: {3, 4, 7, 8, 15, 16, 17}, 0x14: {5, 6, 17}}
    jar = next(jvm.jars_dir(ClientSettings()).glob("spark-sql-api_*.jar"))
    instructions, wrong = 0, []
    with zipfile.ZipFile(jar) as archive:
        for name in archive.namelist():
            if not name.endswith(".class"):
                continue
            data = archive.read(name)
            classfile = jar_check.parse_class(data)
            for code in _code_of(data, classfile):
                for pc, index in jar_check._pool_indexes(code):
                    instructions += 1
                    if classfile.pool.get(index, (None,))[0] not in expected[code[pc]]:
                        wrong.append((name, pc))
    assert instructions > 50_000 and wrong == []


def _code_of(data: bytes, classfile: jar_check.ClassFile):
    """The bytecode of each method of a class."""
    reader = jar_check._Reader(data)
    reader.at = classfile._rest
    reader.take(2)
    reader.take(2 * reader.u2())
    for _ in range(reader.u2()):
        reader.take(6)
        jar_check._skip_attributes(reader)
    for _ in range(reader.u2()):
        reader.take(6)
        for _ in range(reader.u2()):
            attribute, length = classfile.utf8(reader.u2()), reader.u4()
            body = reader.take(length)
            if attribute == "Code":
                code_reader = jar_check._Reader(body)
                code_reader.take(4)
                yield code_reader.take(code_reader.u4())


def test_not_a_class_file_or_jar(tmp_path):
    with pytest.raises(ClassFileError, match="bad magic"):
        jar_check.parse_class(b"PK\x03\x04 not a class")
    with pytest.raises(ClassFileError, match="truncated"):
        jar_check.parse_class(bytes.fromhex("cafebabe00000041"))
    bad = tmp_path / "bad.jar"
    bad.write_text("not a zip")
    with pytest.raises(ClassFileError, match="not a valid jar"):
        jar_check.check_jar(bad)
    # A broken class is skipped, not a finding: what cannot be read is not known to be incompatible.
    broken = tmp_path / "broken.jar"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("acme/Broken.class", b"\xca\xfe\xba\xbe\x00\x00\x00\x41\x00\x09\x07")
    assert jar_check.check_jar(broken) == []


def test_check_cli_on_jars(jars, tmp_path):
    def check(*args):
        return subprocess.run([SPARK_ROUTER, "check", *args], capture_output=True, text=True, timeout=120,
                              check=False)

    flagged = check(str(jars["job"]))
    assert flagged.returncode == 1, flagged.stderr
    assert f"Job.java:{line_of(JOB, 'sc')}: acme.Job.main uses SparkSession.sparkContext()" in flagged.stdout
    assert "checking the classes acme.Job uses" in flagged.stderr
    ready = check(str(jars["ready"]))
    assert ready.returncode == 0 and "no Connect incompatibilities" in ready.stderr
    unused = check("--class", "acme.Unused", str(jars["job"]))
    assert unused.returncode == 1 and "acme.Unused uses AbstractJavaRDDLike.count()" in unused.stdout
    for args, message in ((["--class", "acme.Nope", str(jars["job"])], "has no class acme.Nope"),
                          ([str(tmp_path / "missing.jar")], "no such file"),
                          (["--class", "acme.Job", __file__], "--class is for a .jar")):
        result = check(*args)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
