package io.sparkrouter.listener;

import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * Runs the listener's tests without a test framework (none is available offline): every public method named
 * test* of every top-level class named *Test in the directory this runner was compiled into, each on a new
 * instance, closed afterwards if it is AutoCloseable. A new test class needs no registration. Arguments, if any,
 * keep only tests whose "Class.method" name contains one of them. Ends with the line "N passed, N failed";
 * exits 1 on a failure.
 */
public final class TestRunner {

    public static void main(String[] args) throws Exception {
        List<String> names = testClassNames(classesRoot());
        System.out.printf("%d test classes: %s%n", names.size(), String.join(", ", names));
        int passed = 0;
        int failed = 0;
        for (String className : names) {
            Class<?> type = Class.forName(className);
            Method[] methods = type.getDeclaredMethods();
            Arrays.sort(methods, Comparator.comparing(Method::getName));
            for (Method method : methods) {
                String name = type.getSimpleName() + "." + method.getName();
                if (!method.getName().startsWith("test") || !Modifier.isPublic(method.getModifiers())
                        || (args.length > 0 && Arrays.stream(args).noneMatch(name::contains))) {
                    continue;
                }
                long start = System.nanoTime();
                try {
                    Object test = type.getDeclaredConstructor().newInstance();
                    try {
                        method.invoke(test);
                    } finally {
                        if (test instanceof AutoCloseable resources) {
                            resources.close();
                        }
                    }
                    passed++;
                    System.out.printf("PASS %s (%d ms)%n", name, (System.nanoTime() - start) / 1_000_000);
                } catch (InvocationTargetException error) {
                    failed++;
                    System.out.printf("FAIL %s: %s%n", name, error.getCause());
                    error.getCause().printStackTrace(System.out);
                } catch (Exception error) {
                    failed++;
                    System.out.printf("FAIL %s: cannot run or clean up: %s%n", name, error);
                }
            }
        }
        System.out.printf("%d passed, %d failed%n", passed, failed);
        System.exit(failed == 0 && passed > 0 ? 0 : 1);
    }

    /** The directory (listener/build/test-classes) this class was loaded from. */
    static Path classesRoot() throws URISyntaxException {
        return Paths.get(TestRunner.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    }

    /** The top-level classes named *Test under a directory of compiled classes, by name. */
    static List<String> testClassNames(Path root) throws IOException {
        List<String> names = new ArrayList<>();
        try (Stream<Path> files = Files.walk(root)) {
            files.filter(file -> file.getFileName().toString().endsWith("Test.class")
                            && !file.getFileName().toString().contains("$"))
                    .forEach(file -> {
                        String relative = root.relativize(file).toString();
                        names.add(relative.substring(0, relative.length() - ".class".length())
                                .replace(file.getFileSystem().getSeparator(), "."));
                    });
        }
        names.sort(null);
        return names;
    }
}
