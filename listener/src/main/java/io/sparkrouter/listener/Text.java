package io.sparkrouter.listener;

/**
 * Makes a string storable by the router: PostgreSQL text holds no NUL and JSON/UTF-8 no lone surrogate
 * (both become U+FFFD), and the router's columns have limits counted in code points (Python's len), so
 * strings are cut there, never between the two halves of a surrogate pair.
 */
final class Text {
    static final int REPLACEMENT = 0xFFFD;

    private Text() {
    }

    /** At most maxCodePoints code points of value, NULs and lone surrogates replaced; null stays null. */
    static String clean(String value, int maxCodePoints) {
        if (value == null) {
            return null;
        }
        StringBuilder out = new StringBuilder(Math.min(value.length(), 2 * maxCodePoints));
        int kept = 0;
        for (int at = 0; at < value.length() && kept < maxCodePoints; kept++) {
            int codePoint = value.codePointAt(at);  // a lone surrogate comes back as itself
            at += Character.charCount(codePoint);
            boolean loneSurrogate = codePoint >= Character.MIN_SURROGATE && codePoint <= Character.MAX_SURROGATE;
            out.appendCodePoint(codePoint == 0 || loneSurrogate ? REPLACEMENT : codePoint);
        }
        return out.toString();
    }
}
