// The analysis components Elasticsearch's security indices need, for the integ-test-zip.
//
// The integ-test-zip (the smallest Elasticsearch build, and the only one on Maven Central)
// ships without the analysis-common module. The security indices (.security-7, which holds
// API keys, service tokens and OAuth2 tokens) are created with an "email" analyzer built from
// the uax_url_email tokenizer and the pattern_capture, lowercase and unique filters, so on
// that build every API-key call fails with "Unknown filter type [pattern_capture]". This
// plugin registers those four names over Lucene's own implementations, which the build does
// carry (lucene-analysis-common). The harness compiles it against the distribution's own jars
// (sturdysearch.testing.es_analysis) and installs it into the security-on copy only.
//
// Only interfaces that are the same in Elasticsearch 7.17, 8 and 9 are used.
package org.sturdysearch.testing;

import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

import org.apache.lucene.analysis.LowerCaseFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.miscellaneous.RemoveDuplicatesTokenFilter;
import org.apache.lucene.analysis.pattern.PatternCaptureGroupTokenFilter;
import org.apache.lucene.analysis.email.UAX29URLEmailTokenizer;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;

public class SturdyAnalysisPlugin extends Plugin implements AnalysisPlugin {

    private static TokenFilterFactory filter(String name, java.util.function.UnaryOperator<TokenStream> make) {
        return new TokenFilterFactory() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public TokenStream create(TokenStream input) {
                return make.apply(input);
            }
        };
    }

    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        return Map.of(
            "pattern_capture",
            (indexSettings, environment, name, settings) -> {
                List<String> patterns = settings.getAsList("patterns");
                boolean preserve = settings.getAsBoolean("preserve_original", true);
                Pattern[] compiled = patterns.stream().map(Pattern::compile).toArray(Pattern[]::new);
                return filter(name, in -> new PatternCaptureGroupTokenFilter(in, preserve, compiled));
            },
            "lowercase",
            (indexSettings, environment, name, settings) -> filter(name, LowerCaseFilter::new),
            "unique",
            (indexSettings, environment, name, settings) -> filter(name, RemoveDuplicatesTokenFilter::new)
        );
    }

    @Override
    public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
        return Map.of(
            "uax_url_email",
            (indexSettings, environment, name, settings) -> TokenizerFactory.newFactory(name, UAX29URLEmailTokenizer::new)
        );
    }
}
