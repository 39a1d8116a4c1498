package io.sparkrouter.listener;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Runs the listener's tests without a test framework (none is available offline): every public method named
 * test* of the classes below, each on a new instance, closed afterwards if it is AutoCloseable. Arguments, if
 * any, keep only tests whose "Class.method" name contains one of them. Ends with the line
 * "N passed, N failed"; exits 1 on a failure.
 */
public final class TestRunner {
    private static final List<Class<?>> TESTS = List.of(
            TextTest.class, StageRecordsTest.class, ConfigTest.class, DeliveryTest.class, HeartbeatTest.class);

    public static void main(String[] args) {
        int passed = 0;
        int failed = 0;
        for (Class<?> type : TESTS) {
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
}
