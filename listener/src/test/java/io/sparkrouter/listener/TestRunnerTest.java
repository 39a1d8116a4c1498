package io.sparkrouter.listener;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** The runner finds the test classes by itself: a new *Test class is run without being listed anywhere. */
public class TestRunnerTest {
    private final Path root = Check.tempDir();

    private void touch(String relative) throws Exception {
        Path file = root.resolve(relative);
        Files.createDirectories(file.getParent());
        Files.write(file, new byte[0]);
    }

    public void testEveryTopLevelClassNamedTestIsFound() throws Exception {
        touch("io/sparkrouter/listener/NewlyAddedTest.class");
        touch("io/sparkrouter/listener/other/DeeperTest.class");
        touch("io/sparkrouter/listener/Helper.class");              // not a test class
        touch("io/sparkrouter/listener/NewlyAddedTest$Inner.class"); // nested: part of its outer class
        touch("io/sparkrouter/listener/Outer$NestedTest.class");
        touch("io/sparkrouter/listener/TestData.json");
        Check.equal(List.of("io.sparkrouter.listener.NewlyAddedTest", "io.sparkrouter.listener.other.DeeperTest"),
                TestRunner.testClassNames(root), "test classes found");
    }

    public void testTheRunnersOwnDirectoryHoldsTheseTests() throws Exception {
        List<String> found = TestRunner.testClassNames(TestRunner.classesRoot());
        for (Class<?> type : List.of(TestRunnerTest.class, DeliveryTest.class, ConfigTest.class)) {
            Check.isTrue(found.contains(type.getName()), type.getName() + " in " + found);
        }
        Check.isTrue(!found.contains(FakeRouter.class.getName()), "helpers are not test classes");
    }
}
