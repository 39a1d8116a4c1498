"""The compatibility check of a JVM app: what in a jar's class files cannot work on Spark Connect.

A class file names every class, field and method it uses in its constant pool; its methods' bytecode says
which method uses which, and their line number tables at which source line. A reference to the SparkContext,
the RDD API, the session's internals (``sessionState``, ``sharedState``, ``sqlContext``) or Spark's classic
implementation cannot work in a Connect client. Found from the bytecode, this works the same for Java and
Scala (or any JVM language) without their compilers.
"""

from __future__ import annotations

import logging
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client_runtime.findings import Finding

log = logging.getLogger("spark_router.jar_check")

# The most findings one jar reports: the router stores at most 1000 and shows the first three.
MAX_FINDINGS = 200
# A constant pool entry: its tag, then its operands, whose types the tag gives (a str for UTF8, else ints).
PoolEntry = tuple[Any, ...]


class ClassFileError(ValueError):
    """Bytes that are not a class file this parser understands."""


# Classes (internal names; a trailing "/" is a package) -> why a Connect client cannot use them.
UNSUPPORTED_CLASSES = {
    "org/apache/spark/SparkContext": "SparkContext cannot be created or used from a Connect client",
    "org/apache/spark/api/java/JavaSparkContext":
        "SparkContext cannot be created or used from a Connect client",
    "org/apache/spark/rdd/": "the RDD API is not available on Connect",
    "org/apache/spark/api/java/JavaRDD": "the RDD API is not available on Connect",
    "org/apache/spark/api/java/JavaPairRDD": "the RDD API is not available on Connect",
    "org/apache/spark/api/java/JavaDoubleRDD": "the RDD API is not available on Connect",
    "org/apache/spark/api/java/JavaRDDLike": "the RDD API is not available on Connect",
    "org/apache/spark/api/java/AbstractJavaRDDLike": "the RDD API is not available on Connect",
    "org/apache/spark/streaming/": "DStreams need a SparkContext",
    "org/apache/spark/broadcast/Broadcast": "broadcast variables need a SparkContext",
    "org/apache/spark/util/AccumulatorV2": "accumulators need a SparkContext",
    "org/apache/spark/util/LongAccumulator": "accumulators need a SparkContext",
    "org/apache/spark/util/DoubleAccumulator": "accumulators need a SparkContext",
    "org/apache/spark/util/CollectionAccumulator": "accumulators need a SparkContext",
    "org/apache/spark/mllib/": "the RDD-based MLlib API needs a SparkContext",
    "org/apache/spark/sql/SQLContext": "SQLContext needs a SparkContext",
    "org/apache/spark/sql/hive/HiveContext": "HiveContext needs a SparkContext",
    "org/apache/spark/sql/classic/": "Spark's classic SQL implementation is not in a Connect client",
    "org/apache/spark/sql/execution/":
        "query execution internals live in the server, not in a Connect client",
    "org/apache/spark/sql/internal/SessionState": "sessionState is not available on Connect",
    "org/apache/spark/sql/internal/SharedState": "sharedState is not available on Connect",
}
# Members of the session and of datasets that a Connect client does not have, whatever their signature.
SESSION_OWNERS = ("org/apache/spark/sql/SparkSession", "org/apache/spark/sql/Dataset")
UNSUPPORTED_MEMBERS = {
    "sparkContext": "SparkSession.sparkContext does not exist on Connect",
    "sessionState": "sessionState is not available on Connect",
    "sharedState": "sharedState is not available on Connect",
    "sqlContext": "sqlContext is not available on Connect",
    "listenerManager": "the listener manager lives in the server",
    "experimental": "experimental methods (extra strategies, optimizations) live in the server",
    "rdd": "Dataset.rdd (RDD API) is not supported on Connect",
    "javaRDD": "Dataset.javaRDD (RDD API) is not supported on Connect",
    "toJavaRDD": "Dataset.toJavaRDD (RDD API) is not supported on Connect",
    "queryExecution": "query execution internals live in the server, not in a Connect client",
}

# Constant pool tags.
UTF8, INTEGER, FLOAT, LONG, DOUBLE, CLASS, STRING = 1, 3, 4, 5, 6, 7, 8
FIELDREF, METHODREF, INTERFACE_METHODREF, NAME_AND_TYPE = 9, 10, 11, 12
METHOD_HANDLE, METHOD_TYPE, DYNAMIC, INVOKE_DYNAMIC, MODULE, PACKAGE = 15, 16, 17, 18, 19, 20
_ENTRY_SIZES = {INTEGER: 4, FLOAT: 4, LONG: 8, DOUBLE: 8, CLASS: 2, STRING: 2, FIELDREF: 4, METHODREF: 4,
                INTERFACE_METHODREF: 4, NAME_AND_TYPE: 4, METHOD_HANDLE: 3, METHOD_TYPE: 2, DYNAMIC: 4,
                INVOKE_DYNAMIC: 4, MODULE: 2, PACKAGE: 2}

# Bytecode: the opcodes whose operand is a constant pool index (u2 unless said), and every other opcode's
# operand length; tableswitch, lookupswitch and wide are sized as they are read.
_POOL_OPCODES = {0x12: 1, 0x13: 2, 0x14: 2, 0xb2: 2, 0xb3: 2, 0xb4: 2, 0xb5: 2, 0xb6: 2, 0xb7: 2, 0xb8: 2,
                 0xb9: 4, 0xba: 4, 0xbb: 2, 0xbd: 2, 0xc0: 2, 0xc1: 2, 0xc5: 3}
_OPERAND_SIZES = {0x10: 1, 0x11: 2, 0xa9: 1, 0xbc: 1, 0x84: 2, 0xc8: 4, 0xc9: 4, 0xc6: 2, 0xc7: 2,
                  **dict.fromkeys(range(0x15, 0x1a), 1), **dict.fromkeys(range(0x36, 0x3b), 1),
                  **dict.fromkeys(range(0x99, 0xa9), 2)}
TABLESWITCH, LOOKUPSWITCH, WIDE, IINC = 0xaa, 0xab, 0xc4, 0x84


@dataclass(frozen=True)
class Reference:
    """A use of something in another class: a class, or one of its fields or methods."""

    owner: str                # internal name, e.g. org/apache/spark/SparkContext
    member: str | None        # field or method name; None for the class itself
    descriptor: str | None    # the member's type descriptor
    is_method: bool = False


@dataclass
class Method:
    name: str
    descriptor: str
    references: list[tuple[int, int]]  # (constant pool index, line or 0), in bytecode order


class ClassFile:
    """A class file's constant pool, read at once; its methods' bytecode and source file, read when asked
    (most classes name nothing a Connect client lacks, and need no more)."""

    def __init__(self, data: bytes):
        self._data = data
        reader = _Reader(data)
        if reader.u4() != 0xCAFEBABE:
            raise ClassFileError("not a class file (bad magic number)")
        reader.take(4)  # minor and major version
        self.pool = _read_pool(reader)
        reader.take(2)  # access flags
        self.name: str = self.utf8(self.pool[reader.u2()][1])  # internal name, e.g. com/acme/Main
        self._rest = reader.at
        self._methods: list[Method] | None = None
        self._source_file: str | None = None

    def reference(self, index: int) -> Reference | None:
        entry = self.pool.get(index)
        if entry is None:
            return None
        tag = entry[0]
        if tag == CLASS:
            return Reference(_element_class(self.utf8(entry[1])), None, None)
        if tag in (FIELDREF, METHODREF, INTERFACE_METHODREF):
            owner = _element_class(self.utf8(self.pool[entry[1]][1]))
            _tag, name_index, type_index = self.pool[entry[2]]
            return Reference(owner, self.utf8(name_index), self.utf8(type_index), is_method=tag != FIELDREF)
        if tag == METHOD_HANDLE:
            return self.reference(entry[2])
        return None

    def references(self) -> Iterator[tuple[int, Reference]]:
        """(index, reference) of every class, field and method the constant pool names."""
        for index, entry in self.pool.items():
            if entry[0] in (CLASS, FIELDREF, METHODREF, INTERFACE_METHODREF):
                reference = self.reference(index)
                if reference is not None:
                    yield index, reference

    def classes_used(self) -> set[str]:
        """The classes this one names: as classes, as owners of members, and in member signatures."""
        names: set[str] = set()
        for _index, reference in self.references():
            names.add(reference.owner)
            if reference.descriptor:
                names.update(_descriptor_classes(reference.descriptor))
        return names

    def utf8(self, index: int) -> str:
        entry = self.pool.get(index)
        if entry is None or entry[0] != UTF8:
            raise ClassFileError(f"constant pool entry {index} is not a UTF-8 string")
        text: str = entry[1]
        return text

    @property
    def methods(self) -> list[Method]:
        if self._methods is None:
            self._methods = self._read_members()
        return self._methods

    @property
    def source_file(self) -> str | None:
        if self._methods is None:
            self._methods = self._read_members()
        return self._source_file

    def _read_members(self) -> list[Method]:
        """The methods; the source file's name on the way."""
        reader = _Reader(self._data)
        reader.at = self._rest
        reader.take(2)  # super class
        reader.take(2 * reader.u2())  # interfaces
        for _ in range(reader.u2()):  # fields
            reader.take(6)
            _skip_attributes(reader)
        methods = []
        for _ in range(reader.u2()):
            reader.take(2)
            name, descriptor = self.utf8(reader.u2()), self.utf8(reader.u2())
            references: list[tuple[int, int]] = []
            for _ in range(reader.u2()):
                attribute, length = self.utf8(reader.u2()), reader.u4()
                body = reader.take(length)
                if attribute == "Code":
                    references = _code_references(body, self.pool)
            methods.append(Method(name, descriptor, references))
        for _ in range(reader.u2()):
            attribute, length = self.utf8(reader.u2()), reader.u4()
            body = reader.take(length)
            if attribute == "SourceFile" and length == 2:
                self._source_file = self.utf8(int.from_bytes(body, "big"))
        return methods


def _element_class(name: str) -> str:
    """An array class's element class (``[Lorg/x/Y;`` -> ``org/x/Y``); other names as they are."""
    if name.startswith("["):
        name = name.lstrip("[")
        return name[1:-1] if name.startswith("L") else name
    return name


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise ClassFileError("truncated class file")
        chunk = self.data[self.at:self.at + size]
        self.at += size
        return chunk

    def u1(self) -> int:
        return self.take(1)[0]

    def u2(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u4(self) -> int:
        return int.from_bytes(self.take(4), "big")


def parse_class(data: bytes) -> ClassFile:
    return ClassFile(data)


def _read_pool(reader: _Reader) -> dict[int, PoolEntry]:
    pool: dict[int, PoolEntry] = {}
    count, index = reader.u2(), 1
    while index < count:
        tag = reader.u1()
        if tag == UTF8:
            pool[index] = (tag, _modified_utf8(reader.take(reader.u2())))
        elif tag == METHOD_HANDLE:
            pool[index] = (tag, reader.u1(), reader.u2())
        elif tag in (CLASS, STRING, METHOD_TYPE, MODULE, PACKAGE):
            pool[index] = (tag, reader.u2())
        elif tag in (FIELDREF, METHODREF, INTERFACE_METHODREF, NAME_AND_TYPE, DYNAMIC, INVOKE_DYNAMIC):
            pool[index] = (tag, reader.u2(), reader.u2())
        elif tag in _ENTRY_SIZES:
            pool[index] = (tag,)
            reader.take(_ENTRY_SIZES[tag])
        else:
            raise ClassFileError(f"unknown constant pool tag {tag} at entry {index}")
        index += 2 if tag in (LONG, DOUBLE) else 1
    return pool


def _skip_attributes(reader: _Reader) -> None:
    for _ in range(reader.u2()):
        reader.take(2)
        reader.take(reader.u4())


def _modified_utf8(raw: bytes) -> str:
    """Class files write NUL as C0 80 and characters beyond the BMP as surrogate pairs (CESU-8)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.replace(b"\xc0\x80", b"\x00").decode("utf-8", errors="surrogatepass").encode(
            "utf-16", "surrogatepass").decode("utf-16", errors="replace")


def _code_references(body: bytes, pool: dict[int, PoolEntry]) -> list[tuple[int, int]]:
    """The constant pool entries a method's bytecode uses, each with its source line (0 if unknown)."""
    reader = _Reader(body)
    reader.take(4)  # max stack, max locals
    code = reader.take(reader.u4())
    reader.take(8 * reader.u2())  # exception table
    lines: list[tuple[int, int]] = []  # (start pc, line)
    for _ in range(reader.u2()):
        attribute, length = pool[reader.u2()][1], reader.u4()
        table = reader.take(length)
        if attribute == "LineNumberTable":
            count = struct.unpack(">H", table[:2])[0]
            lines += [struct.unpack(">HH", table[2 + 4 * i:6 + 4 * i]) for i in range(count)]
    lines.sort()
    found = []
    for pc, index in _pool_indexes(code):
        line = 0
        for start, number in lines:
            if start > pc:
                break
            line = number
        found.append((index, line))
    return found


def _pool_indexes(code: bytes) -> Iterator[tuple[int, int]]:
    """(pc, constant pool index) of every instruction that names a constant pool entry."""
    pc, size = 0, len(code)
    while pc < size:
        opcode = code[pc]
        if opcode in _POOL_OPCODES:
            operand = _POOL_OPCODES[opcode]
            if pc + 1 + min(operand, 2) > size:
                raise ClassFileError("truncated bytecode")
            index = code[pc + 1] if operand == 1 else struct.unpack(">H", code[pc + 1:pc + 3])[0]
            yield pc, index
            pc += 1 + operand
        elif opcode in (TABLESWITCH, LOOKUPSWITCH):
            start = pc + 1 + (-(pc + 1) % 4)
            if start + 12 > size:
                raise ClassFileError("truncated switch")
            if opcode == TABLESWITCH:
                low, high = struct.unpack(">ii", code[start + 4:start + 12])
                pc = start + 12 + 4 * (high - low + 1)
            else:
                pairs = struct.unpack(">i", code[start + 4:start + 8])[0]
                pc = start + 8 + 8 * pairs
        elif opcode == WIDE:
            pc += 6 if pc + 1 < size and code[pc + 1] == IINC else 4
        else:
            pc += 1 + _OPERAND_SIZES.get(opcode, 0)


# ------------------------------------------------------------------------------------------------ the check


def why_unsupported(reference: Reference) -> str | None:
    """Why a Connect client cannot use what the reference names, or None if it can."""
    if (reference.member is not None and reference.owner in SESSION_OWNERS
            and reference.member in UNSUPPORTED_MEMBERS):
        return UNSUPPORTED_MEMBERS[reference.member]
    why = _unsupported_class(reference.owner)
    if why is None and reference.descriptor:
        # A supported method that takes or returns an unsupported type: createDataFrame(JavaRDD, ...).
        for name in _descriptor_classes(reference.descriptor):
            why = _unsupported_class(name)
            if why is not None:
                break
    return why


def _unsupported_class(name: str) -> str | None:
    name = name.rstrip("$")  # a Scala object: SparkContext$
    for prefix, why in UNSUPPORTED_CLASSES.items():
        if (name == prefix or (prefix.endswith("/") and name.startswith(prefix))
                or name.startswith(prefix + "$")):
            return why
    return None


def _descriptor_classes(descriptor: str) -> list[str]:
    names, at = [], 0
    while (start := descriptor.find("L", at)) >= 0:
        end = descriptor.find(";", start)
        if end < 0:
            break
        names.append(descriptor[start + 1:end])
        at = end + 1
    return names


def describe(reference: Reference) -> str:
    """SparkSession.sparkContext(), new JavaSparkContext, JavaRDD, classic.SparkSession, ... as a reader knows
    them."""
    owner = reference.owner.rsplit("/", 1)[-1].rstrip("$").replace("$", ".")
    if reference.owner.startswith("org/apache/spark/sql/classic/"):
        owner = f"classic.{owner}"
    if reference.member is None:
        return owner
    if reference.member == "<init>":
        return f"new {owner}"
    return f"{owner}.{reference.member}" + ("()" if reference.is_method else "")


def _method_label(name: str) -> str:
    """lambda$main$0 -> main (lambda): javac names a lambda's body after its method."""
    if name.startswith("lambda$") and name.count("$") >= 2:
        return f"{name.split('$')[1]} (lambda)"
    return {"<init>": "<constructor>", "<clinit>": "<static init>"}.get(name, name)


def check_class(classfile: ClassFile, location: str) -> list[Finding]:
    """Findings of one class: per method, each unsupported thing it uses once, at its first line."""
    # Constant pool index -> what it names and why a Connect client cannot use it.
    unsupported = {index: (reference, why) for index, reference in classfile.references()
                   if (why := why_unsupported(reference)) is not None}
    unsupported.update({index: (reference, why) for index, entry in classfile.pool.items()
                        if entry[0] == METHOD_HANDLE and (reference := classfile.reference(index)) is not None
                        and (why := why_unsupported(reference)) is not None})
    if not unsupported:
        return []
    findings: list[Finding] = []
    in_methods: set[tuple[str, str]] = set()
    reported: set[str] = set()
    class_name = classfile.name.replace("/", ".")
    for method in classfile.methods:
        # A class a method also uses members of (new X, a cast to X, then X.m()) is said by those members.
        owners_of_members = {unsupported[index][0].owner for index, _line in method.references
                             if index in unsupported and unsupported[index][0].member is not None}
        for index, line in method.references:
            if index not in unsupported:
                continue
            reference, why = unsupported[index]
            if reference.member is None and reference.owner in owners_of_members:
                continue
            what = describe(reference)
            reported.add(what)
            if (method.name, what) not in in_methods:
                in_methods.add((method.name, what))
                user = f"{class_name}.{_method_label(method.name)}"
                findings.append(Finding(location, line, f"{user} uses {what}", why))
    # Members no method's code names directly: the method references of lambdas (JavaRDD::count), in the
    # bootstrap methods. A class named only in type information is left out: its uses are findings already.
    owners = {reference.owner for reference, _why in unsupported.values() if describe(reference) in reported}
    for index in sorted(unsupported):
        reference, why = unsupported[index]
        what = describe(reference)
        if reference.member is not None and what not in reported and reference.owner not in owners:
            reported.add(what)
            findings.append(Finding(location, 0, f"{class_name} uses {what}", why))
    return findings


def check_jar(path: Path, main_class: str | None = None) -> list[Finding]:
    """The jar's classes that ``main_class`` uses, directly or through others in the jar (default: its
    manifest's Main-Class; every class if it names none). Findings are named ``app.jar!com/acme/Main.java``
    (the class's source file, whose lines the line numbers are), or ``app.jar!com/acme/Main.class``.
    Classes loaded by name (reflection) are not followed."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ClassFileError(f"{path} is not a valid jar (zip) archive") from exc
    with archive:
        entries = {name[:-len(".class")]: name for name in archive.namelist()
                   if name.endswith(".class") and not name.startswith("META-INF/")
                   and "module-info" not in name}
        main_class = main_class or _manifest_main_class(archive)
        if main_class is None:
            pending = sorted(entries)
        else:
            start = main_class.replace(".", "/")
            if start not in entries:
                raise ClassFileError(f"{path} has no class {main_class}")
            pending = [start]
        seen, findings = set(pending), []
        while pending:
            name = pending.pop()
            try:
                classfile = parse_class(archive.read(entries[name]))
                if main_class is not None:
                    for used in classfile.classes_used():
                        # Spark's own classes, if the jar carries them, are not the app's code.
                        if used in entries and used not in seen and not used.startswith("org/apache/spark/"):
                            seen.add(used)
                            pending.append(used)
                folder = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
                found = check_class(classfile,
                                    f"{path}!{folder}{classfile.source_file}" if classfile.source_file
                                    else f"{path}!{entries[name]}")
            except (ClassFileError, KeyError, IndexError, struct.error) as exc:
                # Not a finding: what cannot be read is not known to be incompatible.
                log.warning("%s!%s: skipped, not a readable class file (%s)", path, entries[name],
                            exc or type(exc).__name__)
                continue
            findings += found
    findings.sort(key=lambda f: (f.path, f.line, f.what))
    if len(findings) > MAX_FINDINGS:
        more = len(findings) - MAX_FINDINGS + 1
        findings = findings[:MAX_FINDINGS - 1] + [Finding(str(path), 0, f"and {more} more",
                                                          "further uses of what Spark Connect does not "
                                                          "support")]
    return findings


def _manifest_main_class(archive: zipfile.ZipFile) -> str | None:
    try:
        manifest = archive.read("META-INF/MANIFEST.MF").decode("utf-8", errors="replace")
    except KeyError:
        return None
    return main_class_in(manifest)


def main_class_in(manifest: str) -> str | None:
    """The Main-Class a jar manifest names, if any. Lines wrap at 72 bytes; a continuation starts with a
    space."""
    for line in manifest.replace("\r\n", "\n").replace("\n ", "").splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "main-class" and value.strip():
            return value.strip()
    return None


def main_class_of(jar: Path) -> str | None:
    """The Main-Class of a jar's manifest, if it names one."""
    try:
        with zipfile.ZipFile(jar) as archive:
            return _manifest_main_class(archive)
    except (zipfile.BadZipFile, OSError):
        return None
